package broker

import (
	"errors"
	"slices"
	"testing"
)

func TestReplyQueueLifecycle(t *testing.T) {
	b := New(Options{})
	const dest = "/reply-queue/session-1"
	if err := b.Publish(&Message{Destination: dest}); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("publish before declare: %v", err)
	}
	if err := b.DeclareReplyQueue(dest, Identity{}); err != nil {
		t.Fatal(err)
	}
	if err := b.DeclareReplyQueue(dest, Identity{}); err != nil {
		t.Fatalf("second declare: %v", err)
	}
	publish(t, b, dest, "a")
	m := publish(t, b, dest, "b")
	if m.Kind != KindReplyQueue {
		t.Fatalf("Kind = %v", m.Kind)
	}

	r := &recorder{}
	sub := subscribe(t, b, dest, r, SubscribeOptions{AckMode: AckClient})
	if got := r.bodies(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("subscriber got %q", got)
	}
	publish(t, b, dest, "c")
	publish(t, b, "/queue/other", "kept")
	if st := b.Stats(); st.Queues != 2 || st.Subscriptions != 1 || st.UnackedMessages != 3 {
		t.Fatalf("stats %+v", st)
	}

	if err := b.DeleteQueue(dest); err != nil {
		t.Fatal(err)
	}
	if len(r.evictions()) != 0 {
		t.Fatal("DeleteQueue called Evict")
	}
	if _, _, ok := b.QueueDepth(dest); ok {
		t.Fatal("deleted queue still reported")
	}
	if err := b.Publish(&Message{Destination: dest}); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("publish after delete: %v", err)
	}
	if err := b.Ack(sub, 1, true); !errors.Is(err, ErrUnknownTag) {
		t.Fatalf("Ack after delete: %v", err)
	}
	b.Unsubscribe(sub) // harmless
	if st := b.Stats(); st.Queues != 1 || st.Subscriptions != 0 || st.UnackedMessages != 0 || st.QueuedMessages != 1 {
		t.Fatalf("stats after delete %+v", st)
	}
	if _, err := b.Subscribe(dest, r, SubscribeOptions{}); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("subscribe after delete: %v", err)
	}
	if err := b.DeleteQueue(dest); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("second delete: %v", err)
	}

	// Declared again, it starts empty.
	if err := b.DeclareReplyQueue(dest, Identity{}); err != nil {
		t.Fatal(err)
	}
	if ready, _, ok := b.QueueDepth(dest); !ok || ready != 0 {
		t.Fatalf("redeclared queue: ready %d ok %v", ready, ok)
	}
}

func TestReplyQueueErrors(t *testing.T) {
	tests := []struct {
		dest string
		err  error
	}{
		{"/queue/q", ErrInvalidDestination},
		{"/topic/t", ErrInvalidDestination},
		{"/reply-queue/", ErrInvalidDestination},
		{"/temp-queue/x", ErrUnknownDestination},
	}
	for _, tt := range tests {
		t.Run(tt.dest, func(t *testing.T) {
			b := New(Options{})
			if err := b.DeclareReplyQueue(tt.dest, Identity{}); !errors.Is(err, tt.err) {
				t.Fatalf("DeclareReplyQueue: %v, want %v", err, tt.err)
			}
			if err := b.DeleteQueue(tt.dest); !errors.Is(err, tt.err) {
				t.Fatalf("DeleteQueue: %v, want %v", err, tt.err)
			}
		})
	}
}
