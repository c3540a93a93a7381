package broker

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// shardCount is the number of hash shards of the destination maps. Publishers
// to different destinations rarely share a shard lock.
const shardCount = 64

// shard holds the exact topic subscriptions, the retained topic messages and
// the queues whose destinations hash to it.
type shard struct {
	mu     sync.RWMutex
	topics map[string]*topicEntry // exact destination → entry; see topicEntry for its lifetime
	queues map[string]*queue      // queues and reply queues; queues are never removed

	// retaining lists the entries whose policy retains messages (a subset
	// of topics), so that a wildcard Subscribe looks for retained messages
	// without walking every topic. Allocated on first use.
	retaining map[string]*topicEntry
	// policies caches the policy of topic destinations that have no entry;
	// bounded by policyCacheLimit. Allocated on first use, and only when
	// Options.Policies is not empty.
	policies map[string]*resolvedPolicy

	counts messageCounts // of the destinations that hash to this shard

	_ [64]byte // keeps neighbouring shards' hot fields off each other's cache line
}

// topicEntry is one exact topic destination: its exact subscriptions and,
// if its policy retains messages, the retained ones. It exists while it has
// subscriptions or retained messages; a destination that has retained a
// message keeps its entry for the life of the broker.
type topicEntry struct {
	subs   []*Subscription // guarded by the shard lock; read in place by publishers
	policy *resolvedPolicy // immutable

	// retainMu guards retained. Publishers retain under the shard read lock,
	// so they need it among themselves; holders of the shard write lock
	// may read retained without it.
	retainMu sync.Mutex
	retained retention
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

// origin says why a message is delivered: published just now, or caught up
// from retained state for a new subscription.
type origin uint8

const (
	originLive origin = iota
	originRetained
	originHistory
)

// topicPublish is the state of one topic delivery run: a publish, a
// DeliverTo, or a new subscription's retained messages. It lives on the
// caller's stack and is passed down by pointer so that fan-out does not
// allocate; nothing may keep the pointer.
type topicPublish struct {
	b         *Broker
	msg       *Message
	policy    *resolvedPolicy // of msg's destination; never nil
	origin    origin
	seq       uint64 // msg's retention sequence number in its destination; 0 if not retained or not live
	delivered int    // subscriptions that took or hold the message
	// Of those, notTaken only hold it or had it already as a retained
	// message; drained counts held messages (of any destination) that
	// lagging subscriptions took during the run. Counting these rare cases
	// apart keeps the common path to the one increment of delivered.
	notTaken int
	drained  int

	// seen records trie nodes already delivered to, for the rare patterns
	// that one destination can reach by several paths (see patternNode).
	seen     [8]*patternNode
	seenN    int
	seenMore []*patternNode
}

// publishTopic routes m to the exact subscriptions of its destination under
// the shard read lock, retaining it first if the policy says so, and then to
// the wildcard subscriptions under the trie read lock.
//
// A message to a stream destination (numbered false) goes to publishStream,
// which numbers it and comes back here with numbered set for the live
// delivery; failed is as for PublishNoWait.
func (b *Broker) publishTopic(m *Message, failed func(error), numbered bool) (int, error) {
	sh := b.shardFor(m.Destination)
	sh.mu.RLock()
	e := sh.topics[m.Destination]
	policy := &b.defaultPolicy
	switch {
	case e != nil:
		policy = e.policy
	case len(b.policies) > 0:
		policy = sh.policies[m.Destination]
	}
	if policy == nil || (e == nil && policy.retain > 0) {
		sh.mu.RUnlock()
		return b.publishTopicSlow(sh, m, failed, numbered)
	}
	if policy.streamed && !numbered {
		sh.mu.RUnlock()
		return 0, b.publishStream(m, policy, failed)
	}
	if err := policy.checkWritable(m); err != nil {
		sh.mu.RUnlock()
		return 0, err
	}
	b.stamp(m)
	st := topicPublish{b: b, msg: m, policy: policy}
	if e != nil {
		if policy.retain > 0 {
			var err error
			if st.seq, err = e.retain(b, m); err != nil {
				sh.mu.RUnlock()
				return 0, err
			}
		}
		for _, s := range e.subs {
			st.deliver(s)
		}
	}
	sh.mu.RUnlock()
	st.finish(sh)
	return st.delivered, nil
}

// publishTopicSlow handles the publishes the read-locked path cannot: the
// destination's policy is not cached yet, or it retains messages and has no
// entry to keep them in.
func (b *Broker) publishTopicSlow(sh *shard, m *Message, failed func(error), numbered bool) (int, error) {
	policy := b.resolvePolicy(m.Destination)
	if policy.streamed && !numbered {
		sh.mu.Lock()
		if sh.topics[m.Destination] == nil {
			sh.cachePolicy(m.Destination, policy)
		}
		sh.mu.Unlock()
		return 0, b.publishStream(m, policy, failed)
	}
	err := policy.checkWritable(m)
	if err == nil {
		b.stamp(m)
	}
	st := topicPublish{b: b, msg: m, policy: policy}
	sh.mu.Lock()
	e := sh.topics[m.Destination]
	created := false
	if e == nil && policy.retain > 0 && err == nil {
		e, created = b.newTopicEntry(sh, strings.Clone(m.Destination), policy), true
	}
	if e == nil {
		sh.cachePolicy(m.Destination, policy)
	} else if err == nil {
		// The entry may have appeared meanwhile; its policy is the same.
		if policy.retain > 0 {
			st.seq, err = e.retain(b, m)
		}
		switch {
		case err == nil:
			for _, s := range e.subs {
				st.deliver(s)
			}
		case created:
			// Refused: the entry made for the retained message must not stay behind.
			delete(sh.topics, m.Destination)
			delete(sh.retaining, m.Destination)
		}
	}
	sh.mu.Unlock()
	if err != nil {
		return 0, err
	}
	st.finish(sh)
	return st.delivered, nil
}

// finish delivers to wildcard subscriptions and counts the publish, its
// deliveries, and a message that reached nobody.
func (st *topicPublish) finish(sh *shard) {
	if st.b.patterns.count.Load() > 0 {
		st.b.patterns.match(st.msg.Destination[len(topicPrefix):], st)
	}
	sh.counts.published[KindTopic].Add(1)
	if st.msg.remote {
		sh.counts.remote.Add(1)
	}
	sh.counts.addDelivered(KindTopic, st.taken())
	if st.delivered == 0 && st.seq == 0 {
		sh.counts.noRoute.Add(1)
	}
}

// taken is the number of deliveries subscribers took during the run.
func (st *topicPublish) taken() int { return st.delivered - st.notTaken + st.drained }

// countTopicDeliveries adds n held messages that sub took outside a
// publish (on Resume or Ack) to the delivery count.
func (b *Broker) countTopicDeliveries(sub *Subscription, n int) {
	if n > 0 {
		b.shardFor(sub.dest).counts.addDelivered(KindTopic, n)
	}
}

// newTopicEntry adds an entry for dest. The caller holds the shard write
// lock.
func (b *Broker) newTopicEntry(sh *shard, dest string, policy *resolvedPolicy) *topicEntry {
	e := &topicEntry{policy: policy}
	sh.topics[dest] = e
	delete(sh.policies, dest) // the entry now carries the policy
	if policy.retain > 0 {
		if sh.retaining == nil {
			sh.retaining = make(map[string]*topicEntry)
		}
		sh.retaining[dest] = e
	}
	return e
}

// deliver offers the message to one topic subscription. The caller holds the
// shard or trie lock, or for DeliverTo nothing: s.mu and s.removed keep an
// ended subscription from being served. The common case, a live message to
// an auto-ack subscription that is keeping up, is kept short; everything
// else is in deliverSlow.
func (st *topicPublish) deliver(s *Subscription) {
	if s.evicted.Load() {
		return
	}
	if st.seq != 0 && s.retainedUpTo != nil && st.seq <= s.retainedUpTo[st.msg.Destination] {
		st.delivered++ // this subscription got it as a retained message at Subscribe
		st.notTaken++
		return
	}
	s.mu.Lock()
	switch {
	case s.evicted.Load() || s.removed:
	case s.lag != nil || s.ackMode != AckAuto || st.origin != originLive:
		st.deliverSlow(s)
	default:
		before := s.resumes.Load()
		switch s.subscriber.Deliver(s, Delivery{Message: st.msg}) {
		case Delivered:
			st.delivered++
		case Full:
			st.fellBehind(s, before)
		}
	}
	// Not deferred, like the shard and trie locks around this call: a
	// panicking Subscriber leaves those held anyway, and this is the
	// innermost loop of every publish.
	s.mu.Unlock()
}

// deliverSlow is deliver for a lagging subscription, a client-ack one, or
// a retained message. The caller holds s.mu.
func (st *topicPublish) deliverSlow(s *Subscription) {
	if s.lag != nil {
		st.deliverLagging(s)
		return
	}
	before := s.resumes.Load()
	switch s.offerTopic(st.msg, st.origin) {
	case Delivered:
		st.delivered++
	case Full:
		st.fellBehind(s, before)
	}
}

// offerTopic hands m to the subscriber and, in the client modes, records it
// as unacknowledged. A full client-ack window answers Full without asking
// the subscriber. The caller holds s.mu.
func (s *Subscription) offerTopic(m *Message, o origin) DeliverResult {
	d := Delivery{Message: m, Retained: o == originRetained, History: o == originHistory}
	if s.ackMode == AckAuto {
		return s.subscriber.Deliver(s, d)
	}
	if s.unacked.live >= s.window || !s.unacked.limit.take() {
		return Full
	}
	d.Tag = s.lastTag + 1
	res := s.subscriber.Deliver(s, d)
	if res == Delivered {
		s.lastTag = d.Tag
		s.unacked.push(d.Tag, m)
	} else {
		s.unacked.limit.add(-1)
	}
	return res
}

// fellBehind applies the destination's slow-consumer policy to s, which has
// just refused the message. before is s.resumes as read before the refused
// offer. The caller holds s.mu.
func (st *topicPublish) fellBehind(s *Subscription, before uint64) {
	switch st.policy.slowConsumer {
	case PolicyConflate, PolicyDropOldest:
		s.hold(st)
		st.delivered++
		st.notTaken++
		s.fullAt = before
		st.drained += s.catchUp()
	default: // PolicyDisconnect
		s.dropLag()
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

// subscribeExactTopic adds s and delivers the destination's retained
// messages to it, all under the shard write lock: no publisher of the
// destination runs meanwhile, so s gets each message either as retained or
// live, exactly once, and the retained ones first.
func (b *Broker) subscribeExactTopic(s *Subscription) {
	sh := b.shardFor(s.dest)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.topics[s.dest]
	if e == nil {
		policy := sh.policies[s.dest]
		if policy == nil {
			policy = b.resolvePolicy(s.dest)
		}
		e = b.newTopicEntry(sh, s.dest, policy)
	}
	if len(e.subs) == 0 {
		b.topicCount.Add(1)
	}
	e.subs = append(e.subs, s)
	if e.retained.n == 0 {
		return
	}
	var buf [16]*Message
	msgs, _ := e.retained.snapshot(buf[:0])
	st := topicPublish{b: b, policy: e.policy, origin: e.policy.retainedOrigin()}
	for _, m := range msgs {
		st.msg = m
		st.deliver(s)
	}
	sh.counts.addDelivered(KindTopic, st.taken())
	clear(buf[:])
}

// unsubscribeExactTopic removes s under the shard write lock, which waits for
// publishers delivering to it. It reports whether s was still subscribed.
func (b *Broker) unsubscribeExactTopic(s *Subscription) bool {
	sh := b.shardFor(s.dest)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.topics[s.dest]; e != nil && removeSubscription(&e.subs, s) && len(e.subs) == 0 {
		b.topicCount.Add(-1)
		if e.retained.n == 0 {
			delete(sh.topics, s.dest)
			delete(sh.retaining, s.dest)
		}
	}
	return s.markRemoved()
}

// markRemoved ends s and discards its unacknowledged and held topic
// deliveries. It reports false if s had already been removed.
func (s *Subscription) markRemoved() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return false
	}
	s.removed = true
	s.unacked.drain(nil)
	s.dropLag()
	if s.cursor != nil {
		s.cursor.fetched, s.cursor.pos = nil, 0
	}
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
