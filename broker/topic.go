package broker

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// shardCount is the number of hash shards of the destination maps. Publishers
// to different destinations rarely share a shard lock.
const shardCount = 64

// shard holds the exact topic subscriptions and the queues whose destinations
// hash to it.
type shard struct {
	mu     sync.RWMutex
	topics map[string]*topicEntry // exact destination → subscriptions; removed with the last one
	queues map[string]*queue      // queues and reply queues; queues are never removed

	dropped atomic.Uint64 // topic messages of this shard that reached no subscription

	_ [64]byte // keeps neighbouring shards' hot fields off each other's cache line
}

// topicEntry lists the exact subscriptions of one topic destination.
type topicEntry struct {
	subs   []*Subscription // guarded by the shard lock; read in place by publishers
	policy resolvedPolicy
}

func shardIndex(dest string) int {
	// FNV-1a, inlined so that hashing never allocates.
	h := uint32(2166136261)
	for i := 0; i < len(dest); i++ {
		h ^= uint32(dest[i])
		h *= 16777619
	}
	return int(h % shardCount)
}

func (b *Broker) shardFor(dest string) *shard { return &b.shards[shardIndex(dest)] }

// topicPublish is the state of one topic publish. It lives on the publisher's
// stack and is passed down by pointer so that fan-out does not allocate.
type topicPublish struct {
	b         *Broker
	msg       *Message
	policy    resolvedPolicy
	hasPolicy bool // policy was resolved (only needed when someone falls behind)
	delivered int

	// seen records trie nodes already delivered to, for the rare patterns
	// that one destination can reach by several paths (see patternNode).
	seen     [8]*patternNode
	seenN    int
	seenMore []*patternNode
}

func (b *Broker) publishTopic(m *Message) {
	st := topicPublish{b: b, msg: m}
	sh := b.shardFor(m.Destination)
	sh.mu.RLock()
	if e := sh.topics[m.Destination]; e != nil {
		st.policy, st.hasPolicy = e.policy, true
		for _, s := range e.subs {
			st.deliver(s)
		}
	}
	sh.mu.RUnlock()
	if b.patterns.count.Load() > 0 {
		b.patterns.match(m.Destination[len(topicPrefix):], &st)
	}
	if st.delivered == 0 {
		sh.dropped.Add(1)
	}
}

// deliver offers the message to one topic subscription. The caller holds the
// shard or trie read lock, so the subscription cannot be removed meanwhile.
func (st *topicPublish) deliver(s *Subscription) {
	if s.evicted.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.evicted.Load() || s.removed {
		return
	}
	var res DeliverResult
	switch {
	case s.ackMode == AckAuto:
		res = s.subscriber.Deliver(s, Delivery{Message: st.msg})
	case s.unacked.live >= s.window:
		res = Full
	default:
		tag := s.lastTag + 1
		res = s.subscriber.Deliver(s, Delivery{Message: st.msg, Tag: tag})
		if res == Delivered {
			s.lastTag = tag
			s.unacked.push(tag, st.msg)
		}
	}
	switch res {
	case Delivered:
		st.delivered++
	case Full:
		st.fellBehind(s)
	}
}

// fellBehind applies the destination's slow-consumer policy to s. The caller
// holds s.mu. The policy is resolved here, not on every publish, because
// subscriptions that only match by pattern have no cached entry.
func (st *topicPublish) fellBehind(s *Subscription) {
	if !st.hasPolicy {
		st.policy, st.hasPolicy = st.b.resolvePolicy(st.msg.Destination), true
	}
	switch st.policy.slowConsumer {
	default: // PolicyDisconnect
		s.evicted.Store(true)
		st.b.evictions.Add(1)
		if st.b.log.Enabled(context.Background(), slog.LevelDebug) {
			st.b.log.Debug("slow consumer evicted",
				"subscription", s.id, "subscribed", s.dest, "destination", st.msg.Destination,
				"policy", st.policy.slowConsumer.String(), "unacked", s.unacked.live)
		}
		s.subscriber.Evict(s, ErrSlowConsumer)
	}
}

// markSeen reports whether n was already delivered to in this publish, and
// records it if not.
func (st *topicPublish) markSeen(n *patternNode) bool {
	for _, p := range st.seen[:st.seenN] {
		if p == n {
			return true
		}
	}
	for _, p := range st.seenMore {
		if p == n {
			return true
		}
	}
	if st.seenN < len(st.seen) {
		st.seen[st.seenN] = n
		st.seenN++
	} else {
		st.seenMore = append(st.seenMore, n)
	}
	return false
}

func (b *Broker) subscribeExactTopic(s *Subscription) {
	sh := b.shardFor(s.dest)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.topics[s.dest]
	if e == nil {
		e = &topicEntry{policy: b.resolvePolicy(s.dest)}
		sh.topics[s.dest] = e
		b.topicCount.Add(1)
	}
	e.subs = append(e.subs, s)
}

// unsubscribeExactTopic removes s under the shard write lock, which waits for
// publishers delivering to it. It reports whether s was still subscribed.
func (b *Broker) unsubscribeExactTopic(s *Subscription) bool {
	sh := b.shardFor(s.dest)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.topics[s.dest]; e != nil {
		if removeSubscription(&e.subs, s) && len(e.subs) == 0 {
			delete(sh.topics, s.dest)
			b.topicCount.Add(-1)
		}
	}
	return s.markRemoved()
}

// markRemoved ends s and discards its unacknowledged topic deliveries. It
// reports false if s had already been removed.
func (s *Subscription) markRemoved() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return false
	}
	s.removed = true
	s.unacked.drain(nil)
	return true
}

// removeSubscription deletes s from *list keeping the order of the others,
// and reports whether it was there.
func removeSubscription(list *[]*Subscription, s *Subscription) bool {
	l := *list
	for i, x := range l {
		if x == s {
			copy(l[i:], l[i+1:])
			l[len(l)-1] = nil
			*list = l[:len(l)-1]
			return true
		}
	}
	return false
}
