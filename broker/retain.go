package broker

import (
	"slices"
	"strings"
)

// retention holds the messages a topic destination retains: the last one
// (LastValue) or the last N (History), in a circular buffer allocated on the
// first publish. seq numbers the destination's retained messages from 1, so
// that a wildcard subscription can tell which live deliveries its snapshot
// already covered (see Subscription.retainedUpTo).
type retention struct {
	msgs []*Message
	next int // slot the next message goes to
	n    int // messages held, at most len(msgs)
	seq  uint64
}

// retain keeps m as the newest retained message of e and returns its
// sequence number. The first message a destination retains makes it one of
// the destinations Options.MaxDestinations bounds: past the bound, retain
// keeps nothing and returns ErrTooManyDestinations. A message that would take
// the retained bytes past Options.MaxRetainedBytes (counting the one it
// replaces as freed) is not kept either: retain returns ErrRetainedFull. The
// caller holds the shard lock, read or write.
func (e *topicEntry) retain(b *Broker, m *Message) (uint64, error) {
	e.retainMu.Lock()
	defer e.retainMu.Unlock()
	r := &e.retained
	grow := int64(m.Size())
	if r.msgs != nil && r.n == len(r.msgs) {
		grow -= int64(r.msgs[r.next].Size()) // the oldest goes
	}
	if !b.reserveRetainedBytes(grow) {
		return 0, &RetainedFullError{Limit: b.opts.MaxRetainedBytes}
	}
	if r.msgs == nil {
		if err := b.reserveDestination(m.Sender); err != nil {
			b.retainedBytes.Add(-grow)
			return 0, err
		}
		r.msgs = make([]*Message, e.policy.retain)
		b.retainedDests.Add(1)
	}
	r.msgs[r.next] = m
	r.next = (r.next + 1) % len(r.msgs)
	if r.n < len(r.msgs) {
		r.n++
	}
	r.seq++
	if rs := b.opts.Retained; rs != nil && !m.remote {
		// A remote message is kept by the node it was published on, a restored one was kept already.
		rs.KeepRetained(m)
	}
	return r.seq, nil
}

// RetainedMessages returns the messages topic destination dest retains now, oldest first; nil when it
// retains none.
func (b *Broker) RetainedMessages(dest string) []*Message {
	sh := b.shardFor(dest)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	e := sh.topics[dest]
	if e == nil {
		return nil
	}
	e.retainMu.Lock()
	defer e.retainMu.Unlock()
	msgs, _ := e.retained.snapshot(nil)
	return msgs
}

// restoreRetained retains again, without delivering them, the messages Options.Retained kept. Called
// once, by New.
func (b *Broker) restoreRetained() {
	rs := b.opts.Retained
	if rs == nil {
		return
	}
	msgs, err := rs.LoadRetained()
	if err != nil {
		b.log.Error("retained messages could not be loaded; topics start without them", "error", err)
		return
	}
	b.RestoreRetained(msgs)
}

// RestoreRetained retains msgs (oldest first within each destination), read back from a store,
// without delivering them or keeping them in Options.Retained again, as the destinations' current
// policies say: a destination that no longer retains gets none back, and one that keeps fewer gets
// the newest. A destination that retains messages already (published since the broker started) is
// left as it is. A message past a bound (destinations, retained bytes) is left out and logged.
func (b *Broker) RestoreRetained(msgs []*Message) {
	restored := 0
	had := make(map[string]bool)
	for _, m := range msgs {
		kind, err := ParseDestination(m.Destination)
		if err != nil || kind != KindTopic {
			continue
		}
		policy := b.resolvePolicy(m.Destination)
		if policy.retain == 0 {
			continue
		}
		m.Kind, m.remote = KindTopic, true // read back from a store: not kept again, nor forwarded
		m.size = int32(m.computeSize())
		sh := b.shardFor(m.Destination)
		sh.mu.Lock()
		e := sh.topics[m.Destination]
		if _, seen := had[m.Destination]; !seen {
			had[m.Destination] = e != nil && e.retained.n > 0
		}
		if had[m.Destination] {
			sh.mu.Unlock()
			continue
		}
		created := e == nil
		if created {
			e = b.newTopicEntry(sh, strings.Clone(m.Destination), policy)
		}
		if _, err = e.retain(b, m); err != nil && created {
			delete(sh.topics, m.Destination)
			delete(sh.retaining, m.Destination)
		}
		sh.mu.Unlock()
		if err != nil {
			b.log.Warn("a retained message was not restored", "destination", m.Destination, "error", err)
			continue
		}
		restored++
	}
	b.log.Info("retained messages restored", "messages", restored, "kept", len(msgs))
}

// reserveRetainedBytes adds grow (negative when a retained message is replaced
// by a smaller one) to the retained bytes, unless that takes them past
// Options.MaxRetainedBytes; a change that does not grow them always succeeds.
func (b *Broker) reserveRetainedBytes(grow int64) bool {
	limit := b.opts.MaxRetainedBytes
	for {
		cur := b.retainedBytes.Load()
		if grow > 0 && limit > 0 && cur+grow > limit {
			return false
		}
		if b.retainedBytes.CompareAndSwap(cur, cur+grow) {
			return true
		}
	}
}

// snapshot appends the retained messages, oldest first, to dst and returns
// it with the sequence number of the newest. The caller holds the shard
// write lock, or the read lock and e.retainMu.
func (r *retention) snapshot(dst []*Message) ([]*Message, uint64) {
	start := r.next - r.n
	if start < 0 {
		start += len(r.msgs)
	}
	for i := range r.n {
		dst = append(dst, r.msgs[(start+i)%len(r.msgs)])
	}
	return dst, r.seq
}

// retainedOrigin is how retained messages of a destination with policy p are
// marked when delivered to a new subscription.
func (p *resolvedPolicy) retainedOrigin() origin {
	if p.history {
		return originHistory
	}
	return originRetained
}

// retainedSet is one destination's retained messages as a new wildcard
// subscription found them.
type retainedSet struct {
	dest   string
	msgs   []*Message
	seq    uint64
	policy *resolvedPolicy
}

// subscribePattern adds the wildcard subscription s and delivers to it the
// retained messages of every destination its pattern matches.
//
// The trie write lock is held throughout, so no publisher delivers to
// wildcard subscriptions meanwhile. A message retained before the snapshot
// is delivered from it, and s.retainedUpTo makes its publisher skip s when
// it reaches the trie after the lock is released; a message retained after
// the snapshot has a higher sequence number and its publisher reaches the
// trie only after the lock is released, when s is there to receive it. So s
// gets every message once, retained ones first, in order per destination.
func (b *Broker) subscribePattern(s *Subscription) {
	x := &b.patterns
	x.mu.Lock()
	defer x.mu.Unlock()
	x.addLocked(s)
	if b.retainedDests.Load() == 0 {
		return
	}
	var sets []retainedSet
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.RLock()
		for dest, e := range sh.retaining {
			if !MatchTopic(s.dest, dest) {
				continue
			}
			e.retainMu.Lock()
			msgs, seq := e.retained.snapshot(nil)
			e.retainMu.Unlock()
			if seq > 0 {
				sets = append(sets, retainedSet{dest: dest, msgs: msgs, seq: seq, policy: e.policy})
			}
		}
		sh.mu.RUnlock()
	}
	if len(sets) == 0 {
		return
	}
	slices.SortFunc(sets, func(a, b retainedSet) int { return strings.Compare(a.dest, b.dest) })
	s.retainedUpTo = make(map[string]uint64, len(sets))
	for _, rs := range sets {
		s.retainedUpTo[rs.dest] = rs.seq
	}
	for _, rs := range sets {
		st := topicPublish{b: b, policy: rs.policy, origin: rs.policy.retainedOrigin()}
		for _, m := range rs.msgs {
			st.msg = m
			st.deliver(s)
		}
		b.shardFor(rs.dest).counts.addDelivered(KindTopic, st.taken())
	}
}
