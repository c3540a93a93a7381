package broker

import (
	"sync"
	"sync/atomic"
)

// Subscription is one subscriber's interest in a destination or a topic
// pattern. It is created by [Broker.Subscribe] and ended by
// [Broker.Unsubscribe]. Its accessors are safe for concurrent use.
type Subscription struct {
	// Immutable after Subscribe.
	id         uint64
	dest       string
	kind       Kind
	ackMode    AckMode
	window     int // max unacknowledged deliveries; 0 = unlimited (queues in auto mode or without prefetch)
	subscriber Subscriber
	pattern    string // normalised trie key of a wildcard topic subscription; "" for an exact one
	queue      *queue // the queue of a queue or reply-queue subscription

	// evicted is set, under mu, when a slow-consumer policy cuts the
	// subscription off. Publishers read it without the lock to skip evicted
	// subscriptions cheaply.
	evicted atomic.Bool

	mu      sync.Mutex
	removed bool       // guarded by mu, set while also holding the index or queue lock
	lastTag uint64     // guarded by mu
	unacked unackedSet // guarded by mu; for queue subscriptions changed only under the queue lock too

	// Queue dispatch state. blocked is written under the queue lock and read
	// without it by Resume; resumes counts Resume calls so that a Resume that
	// races with a Full answer is not lost (see queue.dispatch).
	blocked atomic.Bool
	resumes atomic.Uint64
}

// ID returns the subscription's identifier, unique per Broker.
func (s *Subscription) ID() uint64 { return s.id }

// Destination returns the destination as subscribed; for a wildcard topic
// subscription, the pattern.
func (s *Subscription) Destination() string { return s.dest }

// Kind returns the kind of the subscribed destination.
func (s *Subscription) Kind() Kind { return s.kind }

// AckMode returns the subscription's acknowledgement mode.
func (s *Subscription) AckMode() AckMode { return s.ackMode }

// TagOf returns the tag of the unacknowledged delivery of message messageID,
// for protocols (STOMP 1.0 and 1.1) that acknowledge by message id. If the
// message is unacknowledged more than once it returns the oldest delivery.
// The lookup is linear in the number of unacknowledged deliveries, starting
// from the oldest.
func (s *Subscription) TagOf(messageID string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unacked.tagOf(messageID)
}

// Unacked returns the number of unacknowledged deliveries.
func (s *Subscription) Unacked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unacked.live
}

// hasRoom reports whether the client-ack window allows another delivery.
// Callers hold s.mu, or the queue lock for a queue subscription.
func (s *Subscription) hasRoom() bool {
	return s.window == 0 || s.unacked.live < s.window
}

// offer hands one queue message to the subscriber and, in the client modes,
// records it as unacknowledged. The caller holds the queue lock.
func (s *Subscription) offer(qm queuedMessage) DeliverResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ackMode == AckAuto {
		return s.subscriber.Deliver(s, Delivery{Message: qm.msg, Redelivered: qm.redelivered})
	}
	tag := s.lastTag + 1
	res := s.subscriber.Deliver(s, Delivery{Message: qm.msg, Tag: tag, Redelivered: qm.redelivered})
	if res == Delivered {
		s.lastTag = tag
		s.unacked.push(tag, qm.msg)
	}
	return res
}
