package natsengine

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stompd/stompd/broker"
)

// startNATS runs a NATS server in the process on a random loopback port, stopped when the test ends.
func startNATS(t *testing.T) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// node is one broker joined to the cluster.
type node struct {
	b *broker.Broker
	c *Cluster
}

// joinCluster joins the cluster on url as name; it leaves when the test ends.
func joinCluster(t *testing.T, url, name string) *Cluster {
	t.Helper()
	c, err := JoinCluster(ClusterConfig{URLs: []string{url}, NodeName: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func joinNode(t *testing.T, url, name string) node {
	t.Helper()
	c := joinCluster(t, url, name)
	b := broker.New(broker.Options{Backplane: c})
	c.SetReceiver(b.PublishRemote)
	return node{b, c}
}

func TestWatchSubjects(t *testing.T) {
	cases := map[string][]string{
		"/topic/a.b":     {"t.a.b"},
		"/topic/a.*":     {"t.a.*"},
		"/topic/*.b":     {"t.*.b"},
		"/topic/a.#":     {"t.a", "t.a.>"},
		"/topic/#":       {"t.>"},
		"/topic/a.#.b":   {"t.a", "t.a.>"},
		"/topic/#.b":     {"t.>"},
		"/topic/a b.c>d": {"t.a%20b.c%3Ed"},
		"/topic/*":       {"t.*"},
	}
	for dest, want := range cases {
		if got := watchSubjects(dest); !slices.Equal(got, want) {
			t.Errorf("watchSubjects(%q) = %v, want %v", dest, got, want)
		}
	}
	if got := topicSubject("/topic/price.€.%2E"); got != "t.price.%E2%82%AC.%252E" {
		t.Errorf("topicSubject = %q", got)
	}
}

func TestClusterTopics(t *testing.T) {
	url := startNATS(t)
	a, b := joinNode(t, url, "a"), joinNode(t, url, "b")

	hostile := []string{"/topic/plain", "/topic/with space.and tab\t", "/topic/gt>.star*", "/topic/pct%41.€", "/topic/a.b.c.d.e"}
	patterns := map[string][]string{ // subscription on node b → destinations of hostile (and more) it must get
		"/topic/plain":                {"/topic/plain"},
		"/topic/with space.and tab\t": {"/topic/with space.and tab\t"},
		"/topic/gt>.*":                {"/topic/gt>.star*"},
		"/topic/a.#":                  {"/topic/a.b.c.d.e"},
		"/topic/a.#.e":                {"/topic/a.b.c.d.e"},
		"/topic/#":                    hostile,
		"/topic/*.€":                  {"/topic/pct%41.€"},
	}
	got := map[string]*consumer{}
	for p := range patterns {
		c := &consumer{}
		if _, err := b.b.Subscribe(p, c, broker.SubscribeOptions{}); err != nil {
			t.Fatal(err)
		}
		got[p] = c
	}
	local := &consumer{}
	if _, err := a.b.Subscribe("/topic/#", local, broker.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	const rounds = 20
	for i := range rounds {
		for _, dest := range hostile {
			publishOne(t, a.b, dest, fmt.Sprintf("%s %d", dest, i))
		}
	}
	for p, dests := range patterns {
		msgs := got[p].wait(t, rounds*len(dests))
		// Every message once, in publish order.
		var bodies []string
		for _, d := range msgs {
			bodies = append(bodies, string(d.Message.Body))
		}
		var want []string
		for i := range rounds {
			for _, dest := range hostile {
				if slices.Contains(dests, dest) {
					want = append(want, fmt.Sprintf("%s %d", dest, i))
				}
			}
		}
		if !slices.Equal(bodies, want) {
			t.Errorf("%q on the other node got %q, want %q", p, bodies, want)
		}
	}
	time.Sleep(100 * time.Millisecond)
	for p, dests := range patterns {
		if n := got[p].count(); n != rounds*len(dests) {
			t.Errorf("%q got %d messages, want %d: repeats", p, n, rounds*len(dests))
		}
	}
	if n := local.count(); n != rounds*len(hostile) {
		t.Errorf("the publishing node's own subscriber got %d, want %d (its messages come back from NATS and must be dropped)", n, rounds*len(hostile))
	}
	st := b.c.Stats()
	if st.Duplicates == 0 {
		t.Errorf("overlapping subscriptions brought no repeats to drop: %+v", st)
	}
	if !st.Connected || st.MessagesIn == 0 {
		t.Errorf("stats %+v", st)
	}
	waitUntil(t, "both nodes seen", func() bool { return len(a.c.Nodes()) == 2 && len(b.c.Nodes()) == 2 })
	if names := b.c.Nodes(); !slices.Contains(names, "a") || !slices.Contains(names, "b") {
		t.Errorf("nodes %v", names)
	}
}

func TestClusterInterestFollowsSubscriptions(t *testing.T) {
	url := startNATS(t)
	a, b := joinNode(t, url, "a"), joinNode(t, url, "b")
	c := &consumer{}
	sub, err := b.b.Subscribe("/topic/x.*", c, broker.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := b.c.Stats().Subjects; n != 1 {
		t.Errorf("%d subjects watched with one subscription", n)
	}
	publishOne(t, a.b, "/topic/x.1", "one")
	c.wait(t, 1)
	b.b.Unsubscribe(sub)
	waitUntil(t, "the subject unwatched", func() bool { return b.c.Stats().Subjects == 0 })
	// Resubscribing within the linger keeps the NATS subscription.
	sub, _ = b.b.Subscribe("/topic/x.*", c, broker.SubscribeOptions{})
	b.b.Unsubscribe(sub)
	sub, _ = b.b.Subscribe("/topic/x.*", c, broker.SubscribeOptions{})
	publishOne(t, a.b, "/topic/x.2", "two")
	c.wait(t, 2)
	if strings.Join(bodiesOf(c), " ") != "one two" {
		t.Errorf("got %v", bodiesOf(c))
	}
}

func bodiesOf(c *consumer) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, d := range c.got {
		out = append(out, string(d.Message.Body))
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 15 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSeenWindow(t *testing.T) {
	var w seenWindow
	for _, s := range []uint64{1, 2, 5, 3, 4} {
		if !w.first(s) {
			t.Errorf("%d taken as a repeat", s)
		}
	}
	for _, s := range []uint64{1, 2, 3, 4, 5} {
		if w.first(s) {
			t.Errorf("%d taken as new twice", s)
		}
	}
	if !w.first(10000) || !w.first(9999) || w.first(9999) || !w.first(2) {
		t.Error("window across a jump")
	}
}

func TestAppendMessageLen(t *testing.T) {
	for _, size := range []int{0, 10, 100, 200, 20000} {
		m := &broker.Message{ID: "id", Destination: "/topic/x", Body: []byte(strings.Repeat("b", size))}
		b := appendMessageLen([]byte("prefix"), m)
		d := decoder{p: b[len("prefix"):]}
		got, err := decodeMessage(d.bytes())
		if err != nil || d.err != nil || len(d.p) != 0 || string(got.Body) != string(m.Body) || got.Destination != "/topic/x" {
			t.Errorf("size %d: %v %v, %d left", size, err, d.err, len(d.p))
		}
	}
}
