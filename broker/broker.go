package broker

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Broker routes messages to subscriptions. All methods are safe for
// concurrent use. A Broker starts no goroutines and needs no closing: every
// delivery runs on the goroutine of the call that causes it.
type Broker struct {
	opts Options
	log  *slog.Logger

	// policies holds one resolved policy per Options.Policies entry, and
	// defaultPolicy the one for destinations matching none; destinations
	// point at them. Immutable after New.
	policies      []resolvedPolicy
	defaultPolicy resolvedPolicy

	shards    [shardCount]shard
	patterns  patternIndex
	apps      appRoutes
	observers observerList

	msgSeq atomic.Uint64
	subSeq atomic.Uint64

	subCounts     [KindCount]atomic.Int64 // current subscriptions by Kind
	topicCount    atomic.Int64            // exact topic destinations with subscriptions
	queueCount    atomic.Int64
	retainedDests atomic.Int64 // topic destinations that have retained a message
	retainedBytes atomic.Int64 // total Message.Size of the retained messages, bounded by Options.MaxRetainedBytes
	stateful      atomic.Int64 // queues, reply queues and retaining topics: bounded by Options.MaxDestinations
	evictions     atomic.Uint64
	conflated     atomic.Uint64
	droppedOldest atomic.Uint64

	// streams are the stream destinations used so far, opened by
	// streamFor; streamsMu is taken with no other broker lock held.
	streamsMu sync.RWMutex
	streams   map[string]*stream
	// streamsOpening holds the streams being opened in the StreamStore, outside streamsMu, so that
	// a slow store holds up only the callers of that destination; guarded by streamsMu.
	streamsOpening map[string]*streamOpening

	durables durables
}

// New returns a Broker configured by opts, with defaults filled in for zero
// fields (see Options).
func New(opts Options) *Broker {
	b := &Broker{opts: opts.withDefaults()}
	b.log = b.opts.Logger
	b.policies, b.defaultPolicy = newResolvedPolicies(b.opts)
	for i := range b.shards {
		b.shards[i].topics = make(map[string]*topicEntry)
		b.shards[i].queues = make(map[string]*queue)
	}
	b.restoreRetained()
	b.restoreDurables()
	return b
}

// SyncStore returns once the Store (if any) has taken every publish and acknowledgement handed to it
// without waiting (PublishNoWait, AckNoWait, auto-ack deliveries); a DISCONNECT's RECEIPT waits for it.
func (b *Broker) SyncStore() error {
	if b.opts.Store == nil {
		return nil
	}
	return b.opts.Store.Sync()
}

// NodeID returns the prefix of the message IDs this broker generates.
func (b *Broker) NodeID() string { return b.opts.NodeID }

// Publish routes m and returns once every delivery has been attempted. It
// never waits for a subscriber: deliveries are non-blocking calls, and a
// subscriber without room is handled by the destination's policy (topics) or
// left for later (queues).
//
// Publish sets m.Kind, and m.ID and m.Published when they are empty; after
// that m must not be modified. A destination whose policy is ReadOnly is
// checked against m.Sender first. A topic message is retained if its
// destination's policy says so; to a topic nobody subscribed to, a message
// that is not retained is dropped and counted; that is not an error. To an
// /app/ destination, Publish calls its handler (see HandleApp) on the
// calling goroutine and returns the handler's error unchanged.
//
// Other errors, with the destination in the text: ErrUnknownDestination
// (including an /app/ destination with no handler), ErrInvalidDestination
// (including a wildcard in a topic name), ErrReadOnly, ErrQueueFull as a
// *QueueFullError when a queue holds MaxQueueDepth ready messages,
// ErrNoRoute for a reply queue that does not exist. On error the message was
// not accepted.
func (b *Broker) Publish(m *Message) error { return b.publish(m, nil) }

// PublishNoWait is Publish for a publisher that wants no confirmation (a SEND without a receipt): a
// message to a stored queue is handed to the Store and PublishNoWait returns without waiting until it
// is stored; should the store then refuse it, failed is called with the reason, from another
// goroutine. Refusals the broker can tell at once are returned, as by Publish. The publisher's order is
// kept: a later Publish or PublishNoWait of the same publisher is stored after this one.
func (b *Broker) PublishNoWait(m *Message, failed func(error)) error { return b.publish(m, failed) }

func (b *Broker) publish(m *Message, failed func(error)) error {
	_, err := b.publishCounted(m, failed)
	return err
}

// publishCounted is publish that also returns, for a topic message, how many subscriptions took or
// hold it.
func (b *Broker) publishCounted(m *Message, failed func(error)) (int, error) {
	kind, err := ParseDestination(m.Destination)
	if err != nil {
		return 0, err
	}
	if m.Kind != kind {
		m.Kind = kind
	}
	switch kind {
	case KindTopic:
		m.Offset, m.remote = 0, false
		n, err := b.publishTopic(m, failed, false)
		if err != nil {
			return 0, err
		}
		b.forward(m)
		if failed == nil && b.opts.Store != nil && b.durables.count.Load() > 0 {
			// The durable subscriptions it reached store it without waiting (their bindings run in
			// the fan-out); a publisher that waits, waits for them too.
			if err := b.opts.Store.Sync(); err != nil {
				return n, fmt.Errorf("%w: durable subscriptions of %q: %v", ErrStoreUnavailable, m.Destination, err)
			}
		}
		return n, nil
	case KindApp:
		return 0, b.publishApp(m)
	default:
		return 0, b.publishQueue(m, kind, failed)
	}
}

// reserveDestination counts a new queue, reply queue or retaining topic
// created by creator against its quota and Options.MaxDestinations, or
// returns ErrTooManyDestinations and counts nothing. releaseDestination gives
// the broker-wide place back (a quota counts creations and keeps them).
func (b *Broker) reserveDestination(creator Identity) error {
	if !creator.Quota.take() {
		return &TooManyDestinationsError{Limit: int(creator.Quota.limit), PerCreator: true}
	}
	if n := b.stateful.Add(1); b.opts.MaxDestinations > 0 && n > int64(b.opts.MaxDestinations) {
		b.stateful.Add(-1)
		creator.Quota.giveBack()
		return &TooManyDestinationsError{Limit: b.opts.MaxDestinations}
	}
	return nil
}

func (b *Broker) releaseDestination() { b.stateful.Add(-1) }

// stamp fills the fields Publish promises to set, once the message has been
// accepted.
func (b *Broker) stamp(m *Message) {
	if m.ID == "" {
		m.ID = b.nextMessageID()
	}
	if m.Published.IsZero() {
		m.Published = time.Now()
	}
	m.size = int32(m.computeSize())
}

func (b *Broker) publishQueue(m *Message, kind Kind, failed func(error)) error {
	q, _ := b.queueFor(m.Destination, false, Identity{})
	if q == nil {
		if kind == KindReplyQueue {
			if b.forwardReply(m) {
				return nil // its node delivers it
			}
			b.shardFor(m.Destination).counts.noRoute.Add(1)
			return errNoRoute(m.Destination)
		}
		// Refuse before creating the queue, so that refused publishes
		// leave nothing behind.
		if err := b.resolvePolicy(m.Destination).checkWritable(m); err != nil {
			return err
		}
		var err error
		if q, err = b.queueFor(m.Destination, true, m.Sender); err != nil {
			return err
		}
	}
	if err := q.policy.checkWritable(m); err != nil {
		return err
	}
	b.stamp(m)
	return q.publish(m, failed)
}

// nextMessageID returns "<node>-<seq>", built in a stack buffer so that the
// string is the only allocation.
func (b *Broker) nextMessageID() string {
	var buf [64]byte
	id := append(buf[:0], b.opts.NodeID...)
	id = append(id, '-')
	id = strconv.AppendUint(id, b.msgSeq.Add(1), 10)
	return string(id)
}

// Subscribe registers s for dest: a topic or topic pattern ('*' and '#'
// words allowed), a queue (created if new; its name is literal), or a reply
// queue that has been declared. Before Subscribe returns, a queue
// subscription is offered the messages the queue holds, and a topic
// subscription gets the retained messages (last value or history) of every
// destination it covers, then the live stream with no gap and no duplicate;
// so s must be ready for Deliver calls before calling it. Then observers
// (see Observe) are told, on the calling goroutine. s must not be nil.
//
// Errors: ErrUnknownDestination, ErrInvalidDestination (empty name, empty
// topic word, an /app/ destination), ErrNoRoute (reply queue not declared),
// ErrInvalidAckMode.
func (b *Broker) Subscribe(dest string, s Subscriber, opts SubscribeOptions) (*Subscription, error) {
	if s == nil {
		panic("broker: Subscribe with nil Subscriber")
	}
	kind, name, err := splitDestination(dest)
	if err != nil {
		return nil, err
	}
	if kind == KindApp {
		return nil, fmt.Errorf("%w %q: app destinations take SEND only", ErrInvalidDestination, dest)
	}
	if opts.AckMode > AckClientIndividual {
		return nil, fmt.Errorf("%w: %d", ErrInvalidAckMode, opts.AckMode)
	}
	if opts.From != nil && kind != KindTopic {
		return nil, fmt.Errorf("%w: %q is not a topic; only topics with a stream policy keep messages to read from an offset", ErrNotStream, dest)
	}
	if opts.Durable != "" && kind != KindTopic {
		opts.Durable = "" // queues keep their messages anyway
	}
	if opts.Durable != "" && opts.From != nil {
		return nil, fmt.Errorf("%w: a durable subscription keeps messages from when it is made; it cannot also start at an offset", ErrNotStream)
	}
	sub := &Subscription{
		id:         b.subSeq.Add(1),
		dest:       dest,
		kind:       kind,
		ackMode:    opts.AckMode,
		subscriber: s,
		window:     b.window(kind, opts),
		owner:      opts.Owner,
	}
	if opts.AckMode != AckAuto {
		sub.unacked.limit = opts.UnackedLimit
	}
	switch {
	case opts.Durable != "":
		if err := b.subscribeDurable(sub, opts.Durable); err != nil {
			return nil, err
		}
	case kind == KindTopic:
		if opts.From != nil {
			if hasWildcardWord(name) {
				sub.pattern = normalizePattern(name)
			}
			if err := b.subscribeStream(sub, *opts.From); err != nil {
				return nil, err
			}
		} else if hasWildcardWord(name) {
			sub.pattern = normalizePattern(name)
			b.subscribePattern(sub)
		} else {
			b.subscribeExactTopic(sub)
		}
	default:
		q, err := b.queueFor(dest, kind == KindQueue, opts.Owner)
		if err != nil {
			return nil, err
		}
		if q == nil {
			return nil, errNoRoute(dest)
		}
		sub.queue, sub.paced = q, true
		if err := sub.queue.subscribe(sub); err != nil {
			return nil, err
		}
	}
	b.subCounts[kind].Add(1)
	if kind == KindTopic && sub.queue == nil {
		b.watch(dest) // a durable subscription's binding watches for it
	}
	b.notify(sub, true)
	return sub, nil
}

// window is the bound on unacknowledged deliveries for a new subscription;
// 0 means unbounded.
func (b *Broker) window(kind Kind, opts SubscribeOptions) int {
	if opts.AckMode == AckAuto {
		return 0
	}
	prefetch := opts.Prefetch
	if prefetch <= 0 {
		prefetch = b.opts.DefaultPrefetch
	}
	if prefetch <= 0 && kind == KindTopic {
		prefetch = b.opts.MaxTopicUnacked
	}
	return prefetch
}

// Unsubscribe ends sub. When it returns, no Deliver or Evict for sub is
// running or will run. Unacknowledged queue messages go back to the front of
// their queue, marked redelivered, and are offered to the other consumers;
// unacknowledged and held topic messages are discarded. Then observers (see
// Observe) are told, on the calling goroutine. Unsubscribing again, or after
// DeleteQueue ended sub, does nothing.
func (b *Broker) Unsubscribe(sub *Subscription) {
	var removed bool
	switch {
	case sub.queue != nil:
		removed = sub.queue.unsubscribe(sub)
	case sub.cursor != nil:
		removed = sub.cursor.st.removeCursor(sub)
	case sub.pattern != "":
		removed = b.patterns.remove(sub)
	default:
		removed = b.unsubscribeExactTopic(sub)
	}
	if removed {
		b.subCounts[sub.kind].Add(-1)
		if sub.kind == KindTopic && sub.queue == nil {
			b.unwatch(sub.dest)
		}
		b.notify(sub, false)
	}
}

// Ack acknowledges the delivery tag of sub. With cumulative (STOMP's client
// mode) it acknowledges every unacknowledged delivery of sub with a tag up to
// tag; otherwise that one only. With a Store, it returns once the store has
// removed the messages (ErrStoreUnavailable if it could not: they are settled
// here and come back after a restart). It returns ErrUnknownTag, changing nothing,
// if tag is not an unacknowledged delivery of sub. For a queue, the freed
// prefetch room is filled at once from held messages, and for a topic
// subscription that holds messages under a lagging policy, the freed window
// is filled from those.
func (b *Broker) Ack(sub *Subscription, tag uint64, cumulative bool) error {
	return b.settle(sub, tag, cumulative, false, true)
}

// AckNoWait is Ack without waiting for a Store to record the acknowledgement (an ACK nobody asked a
// RECEIPT for): after a crash, such a message may come back.
func (b *Broker) AckNoWait(sub *Subscription, tag uint64, cumulative bool) error {
	return b.settle(sub, tag, cumulative, false, false)
}

// Nack rejects the delivery tag of sub, with the same tag rules as Ack. Queue
// messages go back to the front of their queue in their original order,
// marked redelivered, and are offered again, possibly to another consumer;
// topic messages are discarded.
func (b *Broker) Nack(sub *Subscription, tag uint64, cumulative bool) error {
	return b.settle(sub, tag, cumulative, true, false)
}

func (b *Broker) settle(sub *Subscription, tag uint64, cumulative, nack, wait bool) error {
	var ok bool
	if sub.queue != nil {
		var err error
		if ok, err = sub.queue.settle(sub, tag, cumulative, nack, wait); err != nil {
			return err
		}
	} else {
		var drained int
		sub.mu.Lock()
		ok = sub.unacked.take(tag, cumulative, nil)
		switch {
		case !ok || sub.removed || sub.evicted.Load():
		case sub.cursor != nil:
			drained = sub.pumpStream(b)
		default:
			drained = sub.drainNow()
		}
		sub.mu.Unlock()
		b.countTopicDeliveries(sub, drained)
	}
	if !ok {
		return fmt.Errorf("%w %d on subscription %d (%s)", ErrUnknownTag, tag, sub.id, sub.dest)
	}
	return nil
}

// Resume tells the broker that sub's subscriber has room again after
// answering Full (or Closed); held messages are offered to it: a queue's, or
// for a topic subscription those its lagging policy kept (conflate,
// drop-oldest), oldest first, until the subscriber refuses one again. It
// costs two atomic operations when sub is not waiting, so it is fine to call
// after every write, from any goroutine; a Deliver that has just answered
// Full may call it for its own subscription.
func (b *Broker) Resume(sub *Subscription) {
	if sub.queue != nil {
		sub.resumes.Add(1)
		if sub.blocked.Load() || sub.limitStarved.Load() {
			sub.queue.resume(sub)
		}
		return
	}
	if sub.cursor != nil {
		b.countTopicDeliveries(sub, sub.resumeStream(b))
		return
	}
	b.countTopicDeliveries(sub, sub.resumeTopic())
}

// QueueDepth returns the number of ready and unacknowledged messages of the
// queue or reply queue dest; ok is false if it does not exist.
func (b *Broker) QueueDepth(dest string) (ready, unacked int, ok bool) {
	q, _ := b.queueFor(dest, false, Identity{})
	if q == nil {
		return 0, 0, false
	}
	ready, unacked = q.depth()
	return ready, unacked, true
}
