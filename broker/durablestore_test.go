package broker

import (
	"errors"
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
func (refusingDurables) KeepDurable(DurableSubscription) error        { return errors.New("disk full") }
func (refusingDurables) DropDurable(string, string) error             { return nil }

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
