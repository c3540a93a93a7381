package broker

import (
	"fmt"
	"slices"
	"strings"
)

// Views and actions for operators (a management API): what queues and topics exist and hold, and
// purging or deleting a queue. They take the same locks as Stats, briefly each: call them at an
// operator's pace, not per message.

// QueueInfo describes a queue or reply queue for an operator.
type QueueInfo struct {
	Destination string
	Kind        Kind // KindQueue or KindReplyQueue
	// Ready counts the messages waiting for a consumer (in the store too, with a Store); Unacked
	// those delivered and not yet acknowledged; ReadyBytes the bytes of the ready ones in memory.
	Ready, Unacked int
	ReadyBytes     int64
	Consumers      int
	// Published and Delivered count the queue's messages since it was made (or since the broker
	// started, for a stored queue), deliveries again after a NACK included.
	Published, Delivered uint64
}

// TopicInfo describes a topic destination for an operator: its exact subscriptions (wildcard ones
// are not counted here) and the messages it retains.
type TopicInfo struct {
	Destination string
	Subscribers int
	Retained    int
	Stream      bool // the destination keeps its messages as a stream
}

// Queues returns every queue and reply queue, sorted by destination.
func (b *Broker) Queues() []QueueInfo {
	var queues []*queue
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.RLock()
		for _, q := range sh.queues {
			queues = append(queues, q)
		}
		sh.mu.RUnlock()
	}
	out := make([]QueueInfo, 0, len(queues))
	for _, q := range queues {
		out = append(out, q.info())
	}
	slices.SortFunc(out, func(a, b QueueInfo) int { return strings.Compare(a.Destination, b.Destination) })
	return out
}

// QueueInfo returns the queue or reply queue dest; ok is false if it does not exist.
func (b *Broker) QueueInfo(dest string) (info QueueInfo, ok bool) {
	q, _ := b.queueFor(dest, false, Identity{})
	if q == nil {
		return QueueInfo{}, false
	}
	return q.info(), true
}

func (q *queue) info() QueueInfo {
	q.mu.Lock()
	defer q.mu.Unlock()
	return QueueInfo{
		Destination: q.dest, Kind: q.kind,
		Ready: q.readyLocked(), Unacked: q.unackedLocked(), ReadyBytes: int64(q.readyBytes),
		Consumers: len(q.consumers),
		Published: q.published.Load(), Delivered: q.delivered.Load(),
	}
}

// Topics returns the topic destinations that exist now (with exact subscriptions, retained messages
// or a stream), sorted by destination.
func (b *Broker) Topics() []TopicInfo {
	var out []TopicInfo
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.RLock()
		for dest, e := range sh.topics {
			e.retainMu.Lock()
			out = append(out, TopicInfo{Destination: dest, Subscribers: len(e.subs), Retained: e.retained.n, Stream: e.policy.streamed})
			e.retainMu.Unlock()
		}
		sh.mu.RUnlock()
	}
	b.streamsMu.RLock()
	for dest := range b.streams {
		if !slices.ContainsFunc(out, func(t TopicInfo) bool { return t.Destination == dest }) {
			out = append(out, TopicInfo{Destination: dest, Stream: true})
		}
	}
	b.streamsMu.RUnlock()
	slices.SortFunc(out, func(a, b TopicInfo) int { return strings.Compare(a.Destination, b.Destination) })
	return out
}

// PurgeQueue discards the ready messages of queue or reply queue dest, in memory and in the store,
// and returns how many there were. Messages delivered and not yet acknowledged stay with their
// consumers. It returns ErrNoRoute if the queue does not exist.
func (b *Broker) PurgeQueue(dest string) (int, error) {
	q, _ := b.queueFor(dest, false, Identity{})
	if q == nil {
		return 0, errNoRoute(dest)
	}
	return q.purge()
}

// purge discards the ready messages.
func (q *queue) purge() (int, error) {
	q.mu.Lock()
	n := q.readyLocked()
	q.ready.reset()
	q.readyBytes = 0
	q.mu.Unlock()
	if q.store != nil {
		if err := q.store.Purge(); err != nil {
			return n, fmt.Errorf("%w: purging %q: %w", ErrStoreUnavailable, q.dest, err)
		}
		// What the queue had asked the store for is gone with the rest: ask afresh.
		q.mu.Lock()
		q.asked = 0
		q.dispatch()
		q.mu.Unlock()
	}
	return n, nil
}

// RemoveQueue deletes queue or reply queue dest and every message it holds, ready and
// unacknowledged, in the store too; its subscriptions end without Evict, observers being told. A
// plain queue is made again by the next SEND or SUBSCRIBE to it. It returns ErrNoRoute if the queue
// does not exist.
func (b *Broker) RemoveQueue(dest string) error {
	kind, _, err := splitDestination(dest)
	if err != nil {
		return err
	}
	if kind == KindReplyQueue {
		return b.DeleteQueue(dest)
	}
	q, err := b.dropQueue(dest, kind)
	if q == nil {
		return err
	}
	if err != nil {
		b.log.Warn("the stored messages of a removed queue were not all removed", "queue", dest, "error", err)
	}
	return nil
}

// PublishReport says where a message published with PublishReported went.
type PublishReport struct {
	// Deliveries counts the topic subscriptions that took the message or hold it for later (0 for a
	// stream destination, whose readers take it as they have room).
	Deliveries int
	// Kept is set when a topic destination keeps the message: retained, or in its stream.
	Kept bool
	// Queued is set for a queue or reply queue message, now waiting for a consumer or delivered.
	Queued bool
}

// Routed reports whether the message reached anyone or anything: a subscriber, a queue, a stream or
// the retained messages.
func (r PublishReport) Routed() bool { return r.Deliveries > 0 || r.Kept || r.Queued }

// PublishReported is Publish that also reports where m went, for an operator's publish.
func (b *Broker) PublishReported(m *Message) (PublishReport, error) {
	n, err := b.publishCounted(m, nil)
	if err != nil {
		return PublishReport{}, err
	}
	switch m.Kind {
	case KindTopic:
		policy := b.topicPolicy(m.Destination)
		return PublishReport{Deliveries: n, Kept: policy.streamed || policy.retain > 0}, nil
	case KindQueue, KindReplyQueue:
		return PublishReport{Queued: true}, nil
	}
	return PublishReport{}, nil
}
