package chat

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/stompd/stompd/broker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type recorder struct {
	mu  sync.Mutex
	got []broker.Delivery
}

func (r *recorder) Deliver(_ *broker.Subscription, d broker.Delivery) broker.DeliverResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
	return broker.Delivered
}

func (r *recorder) Evict(*broker.Subscription, error) {}

// events decodes everything received so far.
func (r *recorder) events(t *testing.T) []Event {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Event, len(r.got))
	for i, d := range r.got {
		if err := json.Unmarshal(d.Message.Body, &out[i]); err != nil {
			t.Fatalf("event %q: %v", d.Message.Body, err)
		}
	}
	return out
}

func newRoom(t *testing.T, opts Options) (*broker.Broker, *Room) {
	t.Helper()
	b := broker.New(broker.Options{Policies: Policies(opts)})
	r := New(b, opts)
	t.Cleanup(r.Close)
	return b, r
}

func join(t *testing.T, b *broker.Broker, session, name string) (*recorder, *broker.Subscription) {
	t.Helper()
	rec := &recorder{}
	sub, err := b.Subscribe(DefaultTopic, rec, broker.SubscribeOptions{Owner: broker.Identity{Session: session, Name: name}})
	if err != nil {
		t.Fatal(err)
	}
	return rec, sub
}

func say(b *broker.Broker, session, name, body string) error {
	return b.Publish(&broker.Message{Destination: DefaultApp, Sender: broker.Identity{Session: session, Name: name}, Body: []byte(body)})
}

func TestMessagesAreStamped(t *testing.T) {
	b, _ := newRoom(t, Options{})
	alice, _ := join(t, b, "s-alice", "Alice")
	if err := say(b, "s-bob", "Bob", "hello"); err != nil {
		t.Fatal(err)
	}
	if err := say(b, "s-bob", "Bob", `{"text": "as json"}`); err != nil {
		t.Fatal(err)
	}
	var msgs []Event
	for _, e := range alice.events(t) {
		if e.Type == "message" {
			msgs = append(msgs, e)
		}
	}
	if len(msgs) != 2 || msgs[0].Text != "hello" || msgs[1].Text != "as json" {
		t.Fatalf("messages %+v", msgs)
	}
	m := msgs[0]
	if m.From != "s-bob" || m.Name != "Bob" {
		t.Fatalf("stamped from %q name %q", m.From, m.Name)
	}
	if _, err := uuid.Parse(m.ID); err != nil {
		t.Fatalf("id %q is not a UUID", m.ID)
	}
	if _, err := time.Parse(time.RFC3339Nano, m.Time); err != nil {
		t.Fatalf("time %q: %v", m.Time, err)
	}
}

func TestValidation(t *testing.T) {
	b, _ := newRoom(t, Options{MaxLength: 10})
	rec, _ := join(t, b, "s1", "A")
	cases := []struct {
		body, want string // want "" means rejected
	}{
		{"  plain  ", "plain"},
		{"a\x00b\tc\nd\x7f", "ab c d"},
		{"<img src=x onerror=alert(1)>"[:10], "<img src=x"},
		{"", ""},
		{"   \t\n", ""},
		{"\x01\x02", ""},
		{"12345678901", ""},
		{`{"text": ""}`, ""},
		{`{"nottext": "x"}`, ""},
		{`{broken`, ""},
		{"\xff\xfe", ""},
	}
	for _, tc := range cases {
		err := say(b, "s1", "A", tc.body)
		if tc.want == "" {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("%q: err %v, want ErrInvalidMessage", tc.body, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.body, err)
			continue
		}
		evs := rec.events(t)
		if got := evs[len(evs)-1].Text; got != tc.want {
			t.Errorf("%q published as %q, want %q", tc.body, got, tc.want)
		}
	}
	err := say(b, "s1", "A", "")
	if err == nil || !strings.HasPrefix(err.Error(), "invalid chat message: ") {
		t.Fatalf("error text %v: clients see it as the ERROR message", err)
	}
}

func TestPresence(t *testing.T) {
	b, room := newRoom(t, Options{})
	alice, _ := join(t, b, "s-alice", "Alice")
	evs := alice.events(t)
	if len(evs) != 2 || evs[0].Type != "join" || evs[0].From != "s-alice" || evs[1].Type != "members" ||
		len(evs[1].Members) != 1 || evs[1].Members[0] != (Member{"s-alice", "Alice"}) {
		t.Fatalf("first member saw %+v, want own join then the member list", evs)
	}

	bob, bobSub := join(t, b, "s-bob", "Bob")
	evs = bob.events(t)
	// Bob's history holds Alice's join; then his own join; then the member list, to him alone.
	last := evs[len(evs)-1]
	if last.Type != "members" || len(last.Members) != 2 || last.Members[0].Name != "Alice" || last.Members[1].Name != "Bob" {
		t.Fatalf("Bob's member list %+v", last)
	}
	aliceEvs := alice.events(t)
	if e := aliceEvs[len(aliceEvs)-1]; e.Type != "join" || e.Name != "Bob" {
		t.Fatalf("Alice saw %+v, want Bob's join (and not Bob's member list)", e)
	}

	// A second subscription of the same session is not a second member.
	_, extra := join(t, b, "s-bob", "Bob")
	if n := len(room.Members()); n != 2 {
		t.Fatalf("%d members after a second subscription of one session", n)
	}
	b.Unsubscribe(extra)
	if n := len(room.Members()); n != 2 {
		t.Fatalf("Bob left with one of his two subscriptions")
	}
	b.Unsubscribe(bobSub)
	aliceEvs = alice.events(t)
	if e := aliceEvs[len(aliceEvs)-1]; e.Type != "leave" || e.From != "s-bob" {
		t.Fatalf("Alice saw %+v, want Bob's leave", e)
	}
	if m := room.Members(); len(m) != 1 || m[0].Name != "Alice" {
		t.Fatalf("members %+v", m)
	}
}

func TestHistoryForNewcomers(t *testing.T) {
	b, _ := newRoom(t, Options{History: 5})
	for i := 0; i < 8; i++ {
		if err := say(b, "s1", "A", "m"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{}
	if _, err := b.Subscribe(DefaultTopic, rec, broker.SubscribeOptions{Owner: broker.Identity{Session: "s2", Name: "B"}}); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	got := append([]broker.Delivery(nil), rec.got...)
	rec.mu.Unlock()
	var texts []string
	for _, d := range got[:5] {
		if !d.History {
			t.Fatalf("delivery %q not marked as history", d.Message.Body)
		}
		var e Event
		_ = json.Unmarshal(d.Message.Body, &e)
		texts = append(texts, e.Text)
	}
	if strings.Join(texts, ",") != "m3,m4,m5,m6,m7" {
		t.Fatalf("history %v, want the last 5 oldest first", texts)
	}
	if got[5].History {
		t.Fatal("live join event marked as history")
	}
}

func TestClientsCannotPublishToTheRoomTopic(t *testing.T) {
	b, _ := newRoom(t, Options{})
	err := b.Publish(&broker.Message{Destination: DefaultTopic, Sender: broker.Identity{Session: "s1"}, Body: []byte(`{"type":"message","text":"forged"}`)})
	if !errors.Is(err, broker.ErrReadOnly) {
		t.Fatalf("client publish to the room topic: %v, want ErrReadOnly", err)
	}
}
