package broker

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// queuedMessage is a ready message and whether it was delivered before.
type queuedMessage struct {
	msg         *Message
	redelivered bool
}

// queue is one queue or reply queue: ready messages in FIFO order and
// consumers served round-robin. All fields are guarded by mu.
type queue struct {
	dest     string
	kind     Kind // KindQueue or KindReplyQueue
	maxDepth int
	maxBytes int // of ready messages, by Message.Size
	policy   *resolvedPolicy
	counts   *messageCounts // of the queue's shard, which outlives a deleted reply queue

	mu         sync.Mutex
	ready      ring[queuedMessage]
	readyBytes int // total Message.Size of ready
	consumers  []*Subscription
	next       int  // index in consumers of the first one to offer the next message to
	deleted    bool // a reply queue removed by DeleteQueue

	requeued []*Message // scratch for Nack and Unsubscribe, reused to avoid allocation

	// With a Store (plain queues only): ready holds what was fetched from it, at most about
	// storeWindow messages, and the rest waits in the store.
	store          StoredQueue
	asked          int   // messages asked of the store and not yet fed
	appending      int   // publishes being stored right now, counted against the depth bound
	appendingBytes int64 // and their bytes
	acked          []*Message

	// published and delivered count the queue's own messages, for QueueInfo.
	published, delivered atomic.Uint64
}

// storeWindow is how many messages a stored queue keeps fetched ahead of its consumers.
const storeWindow = 256

// queueFor returns the queue for dest, creating it when create is set (plain
// queues are created on first use; reply queues only by DeclareReplyQueue).
// It returns nil if the queue does not exist and create is false, and
// ErrTooManyDestinations when creating it would pass creator's quota or
// Options.MaxDestinations.
func (b *Broker) queueFor(dest string, create bool, creator Identity) (*queue, error) {
	sh := b.shardFor(dest)
	sh.mu.RLock()
	q := sh.queues[dest]
	sh.mu.RUnlock()
	if q != nil || !create {
		return q, nil
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if q = sh.queues[dest]; q == nil {
		if err := b.reserveDestination(creator); err != nil {
			return nil, err
		}
		p := b.resolvePolicy(dest)
		kind := KindQueue
		if strings.HasPrefix(dest, replyQueuePrefix) {
			kind = KindReplyQueue
		}
		q = &queue{dest: dest, kind: kind, maxDepth: p.maxQueueDepth, maxBytes: p.maxQueueBytes, policy: p, counts: &sh.counts}
		if kind == KindQueue && b.opts.Store != nil {
			// Opened under the shard lock, so that the queue exists once, with its store; queues are
			// created rarely.
			sq, err := b.opts.Store.OpenQueue(dest, q)
			if err != nil {
				b.releaseDestination()
				return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
			}
			q.store = sq
		}
		sh.queues[dest] = q
		b.queueCount.Add(1)
	}
	return q, nil
}

func (q *queue) publish(m *Message, failed func(error)) error {
	if q.store != nil {
		if failed != nil {
			return q.publishStoredNoWait(m, failed)
		}
		return q.publishStored(m)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deleted {
		q.counts.noRoute.Add(1)
		return errNoRoute(q.dest)
	}
	if q.ready.len() >= q.maxDepth {
		return &QueueFullError{Destination: q.dest, Limit: q.maxDepth}
	}
	size := m.Size()
	if q.readyBytes+size > q.maxBytes {
		return &QueueFullError{Destination: q.dest, Limit: q.maxBytes, Bytes: true}
	}
	q.counts.published[q.kind].Add(1)
	if m.remote {
		q.counts.remote.Add(1)
	}
	q.published.Add(1)
	q.ready.pushBack(queuedMessage{msg: m})
	q.readyBytes += size
	q.dispatch()
	return nil
}

// reserveStored counts m against the queue's bounds as a publish being stored, or reports why it does
// not fit. releaseStored ends the reservation, counting m published when stored.
func (q *queue) reserveStored(m *Message) error {
	size := int64(m.Size())
	q.mu.Lock()
	defer q.mu.Unlock()
	stored, storedBytes := q.store.Stored()
	if stored-q.unackedLocked()+q.appending >= q.maxDepth {
		return &QueueFullError{Destination: q.dest, Limit: q.maxDepth}
	}
	if storedBytes+q.appendingBytes+size > int64(q.maxBytes) {
		return &QueueFullError{Destination: q.dest, Limit: q.maxBytes, Bytes: true}
	}
	q.appending++
	q.appendingBytes += size
	return nil
}

func (q *queue) releaseStored(m *Message, stored bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.appending--
	q.appendingBytes -= int64(m.Size())
	if stored {
		q.counts.published[q.kind].Add(1)
		q.published.Add(1)
	}
}

// publishStored appends m to the queue's store, within the queue's bounds, which count what the store
// holds (delivered and unacknowledged messages included for the bytes); m reaches consumers when the
// queue fetches it back. No lock is held while the store works.
func (q *queue) publishStored(m *Message) error {
	if err := q.reserveStored(m); err != nil {
		return err
	}
	err := q.store.Append(m)
	q.releaseStored(m, err == nil)
	if err != nil {
		return fmt.Errorf("queue %q: %w", q.dest, err)
	}
	return nil
}

// publishStoredNoWait is publishStored without waiting for the store: failed is called if it refuses m.
func (q *queue) publishStoredNoWait(m *Message, failed func(error)) error {
	if err := q.reserveStored(m); err != nil {
		return err
	}
	q.store.AppendNoWait(m, func(err error) {
		q.releaseStored(m, err == nil)
		if err != nil {
			failed(fmt.Errorf("queue %q: %w", q.dest, err))
		}
	})
	return nil
}

// Stored implements QueueFeed: messages the queue asked its store for join the ready ones.
func (q *queue) Stored(msgs []StoredMessage) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, sm := range msgs {
		m := sm.Message
		m.Kind = q.kind
		m.stored = sm.Ref
		m.size = int32(m.computeSize())
		q.ready.pushBack(queuedMessage{msg: m, redelivered: sm.Redelivered})
		q.readyBytes += int(m.size)
	}
	q.asked = max(0, q.asked-len(msgs))
	q.dispatch()
}

// askStore fetches as many messages as the consumers have room for, at most storeWindow ahead: a
// message is fetched when it can be delivered, so that what the store counts as delivered is what
// consumers were given (it marks those redelivered after a restart). The caller holds q.mu.
func (q *queue) askStore() {
	want := q.consumerRoom() - q.ready.len() - q.asked
	if want <= 0 {
		return
	}
	q.asked += want
	q.store.Want(want)
}

// consumerRoom is how many more deliveries the queue's consumers can take now, at most storeWindow.
// The caller holds q.mu.
func (q *queue) consumerRoom() int {
	room := 0
	for _, s := range q.consumers {
		if s.blocked.Load() {
			continue
		}
		if s.window == 0 {
			return storeWindow
		}
		room += max(0, s.window-s.unacked.live) // stable under q.mu for queue subscriptions
		if room >= storeWindow {
			return storeWindow
		}
	}
	return room
}

// unackedLocked counts the queue's unacknowledged deliveries. The caller holds q.mu.
func (q *queue) unackedLocked() int {
	n := 0
	for _, s := range q.consumers {
		n += s.unacked.live // stable under q.mu for queue subscriptions
	}
	return n
}

// dispatch offers ready messages, oldest first, to consumers in round-robin
// order until the queue is empty or no consumer can take one, and counts
// the deliveries once at the end. The caller holds q.mu.
func (q *queue) dispatch() {
	var taken, redelivered int
	for q.ready.len() > 0 {
		i := q.pickConsumer()
		if i < 0 {
			break
		}
		s := q.consumers[i]
		if s.ackMode != AckAuto && !s.unacked.limit.take() {
			continue // another destination took the last room; pickConsumer now sees it full
		}
		q.next = (i + 1) % len(q.consumers)
		resumes := s.resumes.Load()
		if qm := *q.ready.at(0); s.offer(qm) == Delivered {
			taken++
			if qm.redelivered {
				redelivered++
			}
			q.ready.popFront()
			q.readyBytes -= qm.msg.Size()
			if s.ackMode == AckAuto && qm.msg.stored != nil {
				_ = q.store.Ack([]StoredRef{qm.msg.stored}, false) // taken for good; a failure brings it back after a restart
			}
			continue
		}
		// Full or Closed: skip s until it calls Resume. A Resume that ran
		// after Deliver answered but before blocked was set saw blocked
		// false and returned at once; the changed counter catches it, and
		// s is offered again instead of waiting for a Resume that already
		// happened.
		s.blocked.Store(true)
		if s.resumes.Load() != resumes {
			s.blocked.Store(false)
		}
	}
	q.counts.addDelivered(q.kind, taken)
	if taken > 0 {
		q.delivered.Add(uint64(taken))
	}
	if redelivered > 0 {
		q.counts.redelivered.Add(uint64(redelivered))
	}
	if q.store != nil {
		if len(q.consumers) == 0 && q.ready.len() > 0 {
			q.releaseReady()
		}
		q.askStore()
	}
}

// releaseReady hands the ready messages back to a store shared with other brokers, this one having no
// consumer for them; a store of this broker's own keeps them here. The caller holds q.mu.
func (q *queue) releaseReady() {
	refs := make([]StoredRef, 0, q.ready.len())
	for i := range q.ready.len() {
		if ref := q.ready.at(i).msg.stored; ref != nil {
			refs = append(refs, ref)
		}
	}
	if len(refs) == q.ready.len() && q.store.Release(refs) {
		q.ready.reset()
		q.readyBytes = 0
	}
}

// pickConsumer returns the index of the first consumer, starting at q.next,
// that is not blocked and has room in its prefetch window, or -1.
func (q *queue) pickConsumer() int {
	n := len(q.consumers)
	for k := 0; k < n; k++ {
		i := (q.next + k) % n
		if s := q.consumers[i]; !s.blocked.Load() && s.hasRoom() && !s.limitRefuses() {
			return i
		}
	}
	return -1
}

// requeue puts messages back at the front of the queue, in their original
// order, marked redelivered. They are never refused for depth: they were
// accepted once and must not be lost. The caller holds q.mu.
func (q *queue) requeue(msgs []*Message) {
	for i := len(msgs) - 1; i >= 0; i-- {
		q.ready.pushFront(queuedMessage{msg: msgs[i], redelivered: true})
		q.readyBytes += msgs[i].Size()
	}
}

// clearRequeued drops the scratch slice's references so that it does not
// keep acknowledged messages alive.
func (q *queue) clearRequeued() {
	clear(q.requeued)
	q.requeued = q.requeued[:0]
}

func (q *queue) subscribe(s *Subscription) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deleted {
		return errNoRoute(q.dest)
	}
	q.consumers = append(q.consumers, s)
	q.dispatch()
	return nil
}

// unsubscribe removes s and returns its unacknowledged messages to the front
// of the queue for the other consumers. Holding q.mu waits for a delivery to s
// in progress. It reports whether s was still subscribed.
func (q *queue) unsubscribe(s *Subscription) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, c := range q.consumers {
		if c == s {
			copy(q.consumers[i:], q.consumers[i+1:])
			q.consumers[len(q.consumers)-1] = nil
			q.consumers = q.consumers[:len(q.consumers)-1]
			if i < q.next {
				q.next--
			}
			if q.next >= len(q.consumers) {
				q.next = 0
			}
			break
		}
	}
	s.mu.Lock()
	if s.removed {
		s.mu.Unlock()
		return false
	}
	s.removed = true
	s.unacked.drain(&q.requeued)
	s.mu.Unlock()
	q.requeue(q.requeued)
	q.clearRequeued()
	q.dispatch()
	return true
}

// settle acknowledges (or with nack, requeues) deliveries of s and then
// dispatches, since s may have room again.
func (q *queue) settle(s *Subscription, tag uint64, cumulative, nack, wait bool) (bool, error) {
	q.mu.Lock()
	var out *[]*Message
	switch {
	case nack:
		out = &q.requeued
	case q.store != nil:
		out = &q.acked
	}
	s.mu.Lock()
	ok := s.unacked.take(tag, cumulative, out)
	s.mu.Unlock()
	if !ok {
		q.mu.Unlock()
		return false, nil
	}
	var refs []StoredRef
	for _, m := range q.acked {
		if m.stored != nil {
			refs = append(refs, m.stored)
		}
	}
	clear(q.acked)
	q.acked = q.acked[:0]
	q.requeue(q.requeued)
	q.clearRequeued()
	q.dispatch()
	q.mu.Unlock()
	if len(refs) == 0 {
		return true, nil
	}
	if err := q.store.Ack(refs, wait); err != nil {
		return true, fmt.Errorf("%w: acknowledging on %q: %w", ErrStoreUnavailable, q.dest, err)
	}
	return true, nil
}

// resume unblocks s and offers it held messages.
func (q *queue) resume(s *Subscription) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s.blocked.Store(false)
	s.limitStarved.Store(false)
	q.dispatch()
}

// remove deletes the queue: its messages are discarded and its subscriptions
// ended without Evict. It returns the subscriptions it ended.
func (q *queue) remove() []*Subscription {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deleted = true
	var ended []*Subscription
	for _, s := range q.consumers {
		s.mu.Lock()
		if !s.removed {
			s.removed = true
			s.unacked.drain(nil)
			ended = append(ended, s)
		}
		s.mu.Unlock()
	}
	q.consumers = nil
	q.ready.reset()
	q.readyBytes = 0
	return ended
}

// addStats adds the queue's ready and unacknowledged messages, and their bytes, to st.
func (q *queue) addStats(st *Stats) {
	q.mu.Lock()
	defer q.mu.Unlock()
	st.QueuedMessages += q.readyLocked()
	st.QueuedBytes += int64(q.readyBytes) // in memory: a store's messages are on disk until fetched
	for _, s := range q.consumers {
		// Stable under q.mu for queue subscriptions.
		st.UnackedMessages += s.unacked.live
		st.UnackedBytes += int64(s.unacked.bytes)
	}
}

// depth returns the ready and unacknowledged message counts.
func (q *queue) depth() (ready, unacked int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.readyLocked(), q.unackedLocked()
}

// readyLocked counts the ready messages: fetched or still in the store, for a stored queue. The caller
// holds q.mu.
func (q *queue) readyLocked() int {
	if q.store == nil {
		return q.ready.len()
	}
	stored, _ := q.store.Stored()
	return max(0, stored-q.unackedLocked())
}

// DeclareReplyQueue creates the reply queue dest (a /reply-queue/ destination)
// if it does not exist yet, counting it against owner's quota; declaring an
// existing one is not an error. It returns ErrUnknownDestination or
// ErrInvalidDestination for a destination that is not a valid reply queue,
// and ErrTooManyDestinations past a bound.
func (b *Broker) DeclareReplyQueue(dest string, owner Identity) error {
	kind, _, err := splitDestination(dest)
	if err != nil {
		return err
	}
	if kind != KindReplyQueue {
		return fmt.Errorf("%w %q: not a %s destination", ErrInvalidDestination, dest, replyQueuePrefix)
	}
	_, err = b.queueFor(dest, true, owner)
	return err
}

// DeleteQueue removes the reply queue dest and discards its messages, ready
// and unacknowledged. Its subscriptions end without Evict, as if
// unsubscribed, and observers are told of each on the calling goroutine;
// their owners may still call Unsubscribe, which does nothing.
// Publishing to it afterwards fails with ErrNoRoute until it is declared
// again. It returns ErrNoRoute if dest is not declared, and
// ErrInvalidDestination for a plain queue, which holds messages that must
// not be lost and is never deleted.
func (b *Broker) DeleteQueue(dest string) error {
	kind, _, err := splitDestination(dest)
	if err != nil {
		return err
	}
	if kind != KindReplyQueue {
		return fmt.Errorf("%w %q: only %s destinations can be deleted", ErrInvalidDestination, dest, replyQueuePrefix)
	}
	_, err = b.dropQueue(dest, kind)
	return err
}

// dropQueue takes queue dest out of the broker and ends its subscriptions (observers are told), and
// returns it, or ErrNoRoute if there is none. A stored queue's messages are deleted from the store
// under the shard lock, as the store queue was opened: a SEND or SUBSCRIBE that makes the queue again
// waits for that, so that the new queue neither counts nor loses what the old one held. storeErr is
// the store's answer.
func (b *Broker) dropQueue(dest string, kind Kind) (q *queue, storeErr error) {
	sh := b.shardFor(dest)
	sh.mu.Lock()
	q = sh.queues[dest]
	if q == nil {
		sh.mu.Unlock()
		return nil, errNoRoute(dest)
	}
	delete(sh.queues, dest)
	ended := q.remove()
	if q.store != nil {
		storeErr = q.store.Delete()
	}
	sh.mu.Unlock()
	b.queueCount.Add(-1)
	b.releaseDestination()
	b.subCounts[kind].Add(int64(-len(ended)))
	for _, s := range ended {
		b.notify(s, false)
	}
	return q, storeErr
}
