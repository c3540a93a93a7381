package broker

import "sync/atomic"

// Stats is a snapshot of the broker's size and of its message counters, for
// tests and metrics. Each figure is read consistently, but they are not read
// at one instant: a message published while Stats runs may show in
// Published and not yet in Delivered.
//
// The uint64 fields count since New and only rise. Arrays of KindCount
// elements are indexed by Kind; their element 0 (no kind) is always zero.
type Stats struct {
	Topics           int // topic destinations and patterns with subscriptions
	Retained         int // topic destinations holding retained messages, subscribed or not
	RetainedMessages int // messages those destinations retain (last values and histories)
	Queues           int // queues and reply queues
	Subscriptions    int
	QueuedMessages   int // ready messages in all queues
	UnackedMessages  int // delivered, awaiting Ack or Nack, all subscriptions
	HeldMessages     int // topic messages held for lagging subscriptions (conflate, drop-oldest)

	// The bytes (Message.Size: body, destination, headers) of those messages, kept for clients:
	// ready in queues, awaiting acknowledgement, held for lagging subscriptions, retained.
	QueuedBytes, UnackedBytes, HeldBytes, RetainedBytes int64

	// SubscriptionsByKind splits Subscriptions by the kind of the
	// subscribed destination; a wildcard subscription is a topic one.
	SubscriptionsByKind [KindCount]int
	// Destinations counts the destinations that exist now, by kind: exact
	// topic destinations that have subscriptions or retained messages
	// (wildcard patterns are not destinations, unlike in Topics), queues
	// and declared reply queues, and /app/ destinations with a handler.
	Destinations [KindCount]int

	// Published counts messages Publish accepted (returned nil for), by
	// the kind of their destination. An /app/ message counts once its
	// handler returned nil; DeliverTo is not a publish.
	Published [KindCount]uint64
	// PublishedRemote counts the messages in Published that another node of a cluster published and
	// this one received (PublishRemote): a cluster's publishes are its nodes' Published less their
	// PublishedRemote.
	PublishedRemote uint64
	// Delivered counts deliveries a Subscriber took (answered Delivered),
	// by the kind of the subscribed destination: live topic messages, held
	// ones when they are finally taken, retained ones given to a new
	// subscription, DeliverTo, and queue messages, redeliveries included.
	// A topic message taken by n subscriptions counts n. /app/ messages go
	// to handlers, not subscribers, so Delivered[KindApp] stays zero.
	Delivered [KindCount]uint64
	// Redelivered counts queue deliveries marked Redelivered (after a Nack,
	// or after their consumer went without acknowledging them); each is
	// also in Delivered.
	Redelivered uint64
	// DroppedNoRoute counts messages that reached nobody: topic messages
	// no subscription took or holds and that were not retained, and
	// publishes refused with ErrNoRoute because their reply queue does not
	// exist (never declared, or deleted).
	DroppedNoRoute uint64
	Evictions      uint64 // subscriptions cut off by a slow-consumer policy
	Conflated      uint64 // held messages replaced by a newer one of the same destination
	DroppedOldest  uint64 // held messages discarded because MaxPending was reached

	// Streams counts the stream destinations used since the broker
	// started; StreamMessages and StreamBytes are what they keep in memory
	// (every message kept in memory mode, the newest ones with a
	// StreamStore), held against Options.MaxRetainedBytes with the retained
	// messages.
	Streams        int
	StreamMessages int
	StreamBytes    int64

	// DurableSubscriptions counts the durable topic subscriptions kept,
	// their subscribers connected or not; the messages they keep are in
	// QueuedMessages and UnackedMessages. DroppedDurableFull counts
	// messages a durable subscription did not keep because it was full.
	DurableSubscriptions int
	DroppedDurableFull   uint64
}

// messageCounts are the message counters of one shard, for the destinations
// that hash to it. Keeping them per shard, next to the lock a publisher
// takes anyway, means publishers to different destinations never write the
// same counter; Stats adds the shards up. Every run of deliveries counts in
// a local variable and adds it here once, so a fan-out to a thousand
// subscriptions costs one atomic add, not a thousand.
type messageCounts struct {
	published   [KindCount]atomic.Uint64
	delivered   [KindCount]atomic.Uint64
	redelivered atomic.Uint64
	noRoute     atomic.Uint64
	remote      atomic.Uint64 // publishes received from another node; also in published
}

// addDelivered adds n deliveries of kind k, skipping the atomic write when
// there is nothing to add.
func (c *messageCounts) addDelivered(k Kind, n int) {
	if n > 0 {
		c.delivered[k].Add(uint64(n))
	}
}

// addTo adds the shard's counters to st. remote is read before published: a publish from another
// node counts in published first, so that read in this order PublishedRemote never exceeds the
// publishes it is part of.
func (c *messageCounts) addTo(st *Stats) {
	st.PublishedRemote += c.remote.Load()
	for k := range KindCount {
		st.Published[k] += c.published[k].Load()
		st.Delivered[k] += c.delivered[k].Load()
	}
	st.Redelivered += c.redelivered.Load()
	st.DroppedNoRoute += c.noRoute.Load()
}

// Stats returns a snapshot of the broker. It walks every destination,
// taking each lock briefly; call it at scrape rate, not per message.
func (b *Broker) Stats() Stats {
	st := Stats{
		Topics:              int(b.topicCount.Load()),
		Retained:            int(b.retainedDests.Load()),
		Queues:              int(b.queueCount.Load()),
		SubscriptionsByKind: b.SubscriptionsByKind(),
		Evictions:           b.evictions.Load(),
		Conflated:           b.conflated.Load(),
		DroppedOldest:       b.droppedOldest.Load(),
	}
	for _, n := range st.SubscriptionsByKind {
		st.Subscriptions += n
	}
	var queues []*queue
	for i := range b.shards {
		sh := &b.shards[i]
		sh.counts.addTo(&st)
		sh.mu.RLock()
		st.Destinations[KindTopic] += len(sh.topics)
		for _, e := range sh.topics {
			for _, s := range e.subs {
				s.addStats(&st)
			}
		}
		for _, e := range sh.retaining {
			e.retainMu.Lock()
			st.RetainedMessages += e.retained.n
			for _, m := range e.retained.msgs {
				if m != nil {
					st.RetainedBytes += int64(m.Size())
				}
			}
			e.retainMu.Unlock()
		}
		for _, q := range sh.queues {
			st.Destinations[q.kind]++
			queues = append(queues, q)
		}
		sh.mu.RUnlock()
	}
	for _, q := range queues {
		q.addStats(&st)
	}
	b.addStreamStats(&st)
	b.addDurableStats(&st)
	st.Topics += b.patterns.stats(&st)
	b.apps.mu.RLock()
	st.Destinations[KindApp] = len(b.apps.routes)
	b.apps.mu.RUnlock()
	return st
}

// SubscriptionsByKind returns the number of current subscriptions, indexed
// by the Kind of the subscribed destination; a wildcard subscription is a
// topic one. It reads one atomic counter per kind and takes no lock, so it
// is cheap enough to poll; the figures are not read at one instant.
func (b *Broker) SubscriptionsByKind() [KindCount]int {
	var n [KindCount]int
	for k := range n {
		n[k] = int(b.subCounts[k].Load())
	}
	return n
}

// addStats adds s's unacknowledged and held deliveries to st.
func (s *Subscription) addStats(st *Stats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.UnackedMessages += s.unacked.live
	st.UnackedBytes += int64(s.unacked.bytes)
	st.HeldMessages += s.held()
	st.HeldBytes += int64(s.heldBytes())
}
