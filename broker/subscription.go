package broker

import (
	"sync"
	"sync/atomic"
)

// Subscription is one subscriber's interest in a destination or a topic
// pattern. It is created by [Broker.Subscribe] and ended by
// [Broker.Unsubscribe]. Its accessors are safe for concurrent use.
type Subscription struct {
	// The fields a topic delivery touches come first, so that it reads one
	// or two cache lines of the subscription rather than four.

	subscriber Subscriber // immutable
	mu         sync.Mutex
	// evicted is set, under mu, when a slow-consumer policy cuts the
	// subscription off. Publishers read it without the lock to skip evicted
	// subscriptions cheaply.
	evicted atomic.Bool
	kind    Kind    // immutable
	ackMode AckMode // immutable
	// paced is set, before the subscription becomes visible, on a queue,
	// durable or stream subscription (see Paced); read on every delivery.
	paced   bool
	removed bool // guarded by mu, set while also holding the index or queue lock
	// lag holds topic messages for a lagging subscription under
	// PolicyConflate or PolicyDropOldest (see lag.go). Guarded by mu; nil
	// until the subscription first falls behind, and again once it has
	// caught up.
	lag *lagState
	// retainedUpTo maps each retained destination whose messages a wildcard
	// subscription got at Subscribe to the retention sequence number of the
	// newest of them. A publisher that retained a message before that
	// snapshot may reach the trie after the subscription was added; the
	// map lets it skip what was already delivered. Written under the trie
	// write lock before the subscription becomes visible, read-only after.
	retainedUpTo map[string]uint64
	// resumes counts Resume calls so that a Resume that races with a Full
	// answer is not lost (see queue.dispatch and Subscription.catchUp).
	resumes atomic.Uint64
	window  int // immutable; max unacknowledged deliveries; 0 = unlimited (queues in auto mode or without prefetch)

	lastTag uint64     // guarded by mu
	unacked unackedSet // guarded by mu; for queue subscriptions changed only under the queue lock too

	// Immutable after Subscribe.
	id      uint64
	dest    string
	pattern string // normalised trie key of a wildcard topic subscription; "" for an exact one
	queue   *queue // the queue of a queue or reply-queue subscription
	owner   Identity

	// blocked is queue dispatch state, written under the queue lock and
	// read without it by Resume.
	blocked atomic.Bool
	// limitStarved is set, under the queue lock, on a queue subscription
	// that dispatch passed over because its shared UnackedLimit was full;
	// Resume dispatches again when it is set.
	limitStarved atomic.Bool

	// More topic lag state. fullAt is the resumes count read just before
	// the Deliver that last answered Full: a Resume is owed while resumes
	// differs from it. lagging mirrors lag != nil for Resume, which reads it
	// without the lock; draining is set while a Deliver runs for a lagging
	// subscription, so that a Resume made from inside that Deliver returns
	// instead of waiting for mu.
	fullAt   uint64 // guarded by mu
	lagging  atomic.Bool
	draining atomic.Bool

	// cursor is set, before the subscription becomes visible, on a stream
	// subscription (SubscribeOptions.From); nil otherwise. cursorWaiting
	// is set when its subscriber refused a message or its owner's shared
	// UnackedLimit was full: publishers skip it and the next Resume reads
	// on (see pumpStream and waitForResume).
	cursor        *streamCursor
	cursorWaiting atomic.Bool
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

// Owner returns who holds the subscription, as given in
// SubscribeOptions.Owner.
func (s *Subscription) Owner() Identity { return s.owner }

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

// topicHasRoom reports whether a client-ack topic subscription may take
// another delivery: its own window and its owner's shared limit allow it.
// It reserves nothing. The caller holds s.mu.
func (s *Subscription) topicHasRoom() bool {
	return s.unacked.live < s.window && !s.unacked.limit.refuses()
}

// limitRefuses reports whether the limit a queue subscription shares with
// its owner's other subscriptions has no room, and if so marks s
// limitStarved, so that the owner's Resume (see UnackedLimit) dispatches
// the queue again. s is marked before the limit is checked a second time,
// which is what makes a concurrent Resume see the mark. The caller holds
// the queue lock.
func (s *Subscription) limitRefuses() bool {
	l := s.unacked.limit
	if l == nil || l.n.Load() < l.max {
		return false
	}
	s.limitStarved.Store(true)
	if l.refuses() {
		return true
	}
	s.limitStarved.Store(false)
	return false
}

// offer hands one queue message to the subscriber and, in the client modes,
// records it as unacknowledged; there, the caller has reserved room in the
// shared limit. The caller holds the queue lock.
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
	} else {
		s.unacked.limit.add(-1) // the room dispatch reserved
	}
	return res
}
