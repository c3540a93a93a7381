package broker

import (
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Subscriber that keeps what it receives. It accepts up to room
// deliveries (0 = unlimited) and then answers refuse (Full by default), and it
// answers refuse at once while refusing is set.
type recorder struct {
	mu       sync.Mutex
	got      []Delivery
	room     int
	refusing bool
	refuse   DeliverResult
	evicts   []error
}

func (r *recorder) Deliver(_ *Subscription, d Delivery) DeliverResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refusing || (r.room > 0 && len(r.got) >= r.room) {
		if r.refuse == Delivered {
			return Full
		}
		return r.refuse
	}
	r.got = append(r.got, d)
	return Delivered
}

func (r *recorder) Evict(_ *Subscription, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evicts = append(r.evicts, err)
}

func (r *recorder) setRefusing(v bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refusing = v
}

func (r *recorder) setRoom(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.room = n
}

func (r *recorder) deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) bodies() []string {
	var out []string
	for _, d := range r.deliveries() {
		out = append(out, string(d.Message.Body))
	}
	return out
}

func (r *recorder) evictions() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evicts)
}

func (r *recorder) last(t *testing.T) Delivery {
	t.Helper()
	got := r.deliveries()
	if len(got) == 0 {
		t.Fatal("no delivery")
	}
	return got[len(got)-1]
}

func publish(t *testing.T, b *Broker, dest, body string) *Message {
	t.Helper()
	m := &Message{Destination: dest, Body: []byte(body)}
	if err := b.Publish(m); err != nil {
		t.Fatalf("Publish(%q): %v", dest, err)
	}
	return m
}

func subscribe(t *testing.T, b *Broker, dest string, s Subscriber, opts SubscribeOptions) *Subscription {
	t.Helper()
	sub, err := b.Subscribe(dest, s, opts)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", dest, err)
	}
	return sub
}
