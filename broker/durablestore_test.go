package broker

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

// memQueueStore is a Store whose queues keep nothing; it records which queues were opened and
// deleted.
type memQueueStore struct {
	mu      sync.Mutex
	opened  []string
	deleted []string
}

type memStoredQueue struct {
	store *memQueueStore
	dest  string
}

func (s *memQueueStore) OpenQueue(dest string, _ QueueFeed) (StoredQueue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opened = append(s.opened, dest)
	return &memStoredQueue{store: s, dest: dest}, nil
}

func (s *memQueueStore) AppendAll([]StoredQueue, []*Message) error { return nil }
func (s *memQueueStore) Sync() error                               { return nil }

func (q *memStoredQueue) Append(*Message) error                     { return nil }
func (q *memStoredQueue) AppendNoWait(_ *Message, done func(error)) { done(nil) }
func (q *memStoredQueue) Want(int)                                  {}
func (q *memStoredQueue) Ack([]StoredRef, bool) error               { return nil }
func (q *memStoredQueue) Stored() (int, int64)                      { return 0, 0 }
func (q *memStoredQueue) Release([]StoredRef) bool                  { return false }
func (q *memStoredQueue) Purge() error                              { return nil }

func (q *memStoredQueue) Delete() error {
	q.store.mu.Lock()
	defer q.store.mu.Unlock()
	q.store.deleted = append(q.store.deleted, q.dest)
	return nil
}

// refusingDurables is a DurableStore that cannot record durable subscriptions.
type refusingDurables struct{}

func (refusingDurables) LoadDurables() ([]DurableSubscription, error) { return nil, nil }
func (refusingDurables) KeepDurable(DurableSubscription) (uint64, error) {
	return 0, errors.New("disk full")
}
func (refusingDurables) DropDurable(string, string) error { return nil }

// A durable subscription that cannot be recorded is not made, and the queue opened for it in the
// Store is deleted again rather than left behind.
func TestDurableStoreQueueDeletedWhenNotRecorded(t *testing.T) {
	store := &memQueueStore{}
	b := New(Options{Store: store, Durables: refusingDurables{}})
	_, err := b.Subscribe("/topic/news", &recorder{}, durableOpts("d1", "alice"))
	if !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("Subscribe with the durable store refusing = %v, want ErrStoreUnavailable", err)
	}
	store.mu.Lock()
	opened, deleted := store.opened, store.deleted
	store.mu.Unlock()
	if len(opened) != 1 || len(deleted) != 1 || deleted[0] != opened[0] {
		t.Errorf("opened %q, deleted %q: the queue of the durable subscription not made was left in the store", opened, deleted)
	}
	if st := b.Stats(); st.DurableSubscriptions != 0 || st.Subscriptions != 0 {
		t.Errorf("%d durable subscriptions and %d subscriptions left", st.DurableSubscriptions, st.Subscriptions)
	}
	publish(t, b, "/topic/news", "after") // no binding left to keep it
}

// numberingDurables is a DurableStore that numbers its changes as a key-value bucket does: every
// record and every deletion takes the next revision.
type numberingDurables struct {
	mu  sync.Mutex
	rev uint64
}

func (s *numberingDurables) LoadDurables() ([]DurableSubscription, error) { return nil, nil }
func (s *numberingDurables) KeepDurable(DurableSubscription) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rev++
	return s.rev, nil
}
func (s *numberingDurables) DropDurable(string, string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rev++
	return nil
}

// A deletion whose notice comes after the durable subscription was made again (a client's
// UNSUBSCRIBE durable:true then SUBSCRIBE with the same id, and the cluster's watch telling the
// deletion late) leaves the new one and its subscribers alone; a newer deletion removes it.
func TestForgetDurableIgnoresOlderDeletion(t *testing.T) {
	b := New(Options{Durables: &numberingDurables{}})
	subscribe(t, b, "/topic/news", &recorder{}, durableOpts("d1", "alice")) // revision 1
	if err := b.DeleteDurable("alice", "d1"); err != nil {                  // revision 2
		t.Fatal(err)
	}
	r := &recorder{}
	subscribe(t, b, "/topic/news", r, durableOpts("d1", "alice")) // revision 3
	// The watch tells what happened, late: the first record, its deletion, the new record.
	spec := DurableSubscription{User: "alice", Name: "d1", Destination: "/topic/news"}
	if err := b.EnsureDurable(spec, 1); err != nil {
		t.Fatal(err)
	}
	b.ForgetDurable("alice", "d1", 2)
	if err := b.EnsureDurable(spec, 3); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "/topic/news", "kept")
	if got := r.bodies(); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("after a late deletion notice the new durable subscription got %v, want [kept]", got)
	}
	if st := b.Stats(); st.DurableSubscriptions != 1 || st.Subscriptions != 1 {
		t.Errorf("%d durable subscriptions, %d subscriptions; want 1 and 1", st.DurableSubscriptions, st.Subscriptions)
	}
	// A revision learned from the watch counts too, and a deletion after it removes it.
	if err := b.EnsureDurable(spec, 7); err != nil {
		t.Fatal(err)
	}
	b.ForgetDurable("alice", "d1", 6)
	if st := b.Stats(); st.DurableSubscriptions != 1 {
		t.Errorf("a deletion older than the revision learned removed the durable subscription")
	}
	b.ForgetDurable("alice", "d1", 8)
	if st := b.Stats(); st.DurableSubscriptions != 0 || st.Subscriptions != 0 {
		t.Errorf("after a newer deletion: %d durable subscriptions, %d subscriptions; want 0 and 0", st.DurableSubscriptions, st.Subscriptions)
	}
}
