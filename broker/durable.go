package broker

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// A durable topic subscription (SubscribeOptions.Durable) keeps the messages of its topic, or topic
// pattern, while its subscriber is away, and delivers them when a subscription with the same name and
// user comes back. It is a private queue fed by a binding: an internal auto-ack topic subscription
// whose subscriber appends every message it is given to the queue. The client's subscriptions are
// consumers of that queue, so they get queue semantics: acks, NACK and redelivered:true, prefetch,
// pacing by room, competing consumers when several share the name. The queue is bounded by the
// topic's policy (MaxQueueDepth, MaxQueueBytes); past the bound a message is not kept for the
// subscription and is counted in Stats.DroppedDurableFull, while the topic's other subscribers get it
// as usual. It lasts until DeleteDurable, and with Options.Durables across restarts.

// DurableStore keeps the durable subscriptions themselves beyond the process (Options.Durables); their
// messages are kept by Options.Store, as queues' are. Without it they last as long as the broker.
type DurableStore interface {
	// LoadDurables returns the durable subscriptions kept. The broker calls it once, in New, and
	// makes them again, so that messages published before their subscribers come back are kept.
	LoadDurables() ([]DurableSubscription, error)
	// KeepDurable records d, returning once it is recorded, with the record's revision: a number
	// that rises with every change to the store's durable subscriptions (0 if the store numbers
	// none), which EnsureDurable and ForgetDurable compare with theirs. DropDurable forgets the one
	// of user and name. The broker calls them with only the durable subscriptions registry locked.
	KeepDurable(d DurableSubscription) (revision uint64, err error)
	DropDurable(user, name string) error
}

// DurableSubscription describes a durable topic subscription.
type DurableSubscription struct {
	User        string // the authenticated user who made it; "" when authentication is off
	Name        string // its name: the STOMP subscription id
	Destination string // the topic or topic pattern it keeps the messages of
}

// ErrDurableMismatch means a subscription named an existing durable subscription with another
// destination: DeleteDurable it first.
var ErrDurableMismatch = errors.New("durable subscription exists with another destination")

// ErrNoDurable means DeleteDurable named a durable subscription that does not exist.
var ErrNoDurable = errors.New("no such durable subscription")

// durablePrefix starts the names of durable subscriptions' queues in the Store: a NUL byte, which no
// STOMP destination can hold, so that they never meet a client's queue.
const durablePrefix = "\x00durable/"

// durable is one durable subscription.
type durable struct {
	DurableSubscription
	queue   *queue
	binding *Subscription
	counts  messageCounts // the deliveries of its queue, added to the topic counts by Stats
	// restoring is set while a durable made again in New is bound: the retained messages its binding
	// is given then were kept before the restart, and are not kept twice.
	restoring atomic.Bool
	// revision is the store's revision (see DurableStore.KeepDurable) of the record at which this
	// node last made or learned it, 0 if none; ForgetDurable ignores a deletion no newer than it.
	// Guarded by durables.mu.
	revision uint64
}

// durableKey identifies a durable subscription by its user and name.
func durableKey(user, name string) string { return user + "\x00" + name }

// durables is the registry of durable subscriptions. mu is taken with no other broker lock held; it
// is held while one is made or deleted, store work included, which is rare.
type durables struct {
	mu     sync.Mutex
	byKey  map[string]*durable
	count  atomic.Int64
	full   atomic.Uint64 // messages not kept because a durable subscription was full
	loaded bool
}

// subscribeDurable attaches sub, a topic subscription named opts.Durable, to its durable
// subscription as a consumer, making the durable subscription if it is new.
func (b *Broker) subscribeDurable(sub *Subscription, name string) error {
	d, err := b.durableFor(DurableSubscription{User: sub.owner.User, Name: name, Destination: sub.dest}, sub.owner, true, 0)
	if err != nil {
		return err
	}
	sub.queue, sub.paced = d.queue, true
	return d.queue.subscribe(sub)
}

// durableFor returns the durable subscription of spec's user and name, making it if it is new (when
// keep is set, recording it in Options.Durables, whose revision it takes). One with another
// destination is ErrDurableMismatch. revision, when above the one the durable subscription has, is
// its new one: the store's revision of a record this node learned of.
func (b *Broker) durableFor(spec DurableSubscription, creator Identity, keep bool, revision uint64) (*durable, error) {
	r := &b.durables
	r.mu.Lock()
	defer r.mu.Unlock()
	key := durableKey(spec.User, spec.Name)
	if d := r.byKey[key]; d != nil {
		if d.Destination != spec.Destination {
			return nil, fmt.Errorf("%w: %q is bound to %q, not %q; UNSUBSCRIBE it with durable:true first",
				ErrDurableMismatch, spec.Name, d.Destination, spec.Destination)
		}
		d.revision = max(d.revision, revision)
		return d, nil
	}
	if err := b.reserveDestination(creator); err != nil {
		return nil, err
	}
	d, err := b.makeDurable(spec, !keep)
	if err == nil {
		d.revision = revision
	}
	if err == nil && keep && b.opts.Durables != nil {
		if d.revision, err = b.opts.Durables.KeepDurable(spec); err != nil {
			b.discardDurable(d)
			err = fmt.Errorf("%w: durable subscription %q: %w", ErrStoreUnavailable, spec.Name, err)
		}
	}
	if err != nil {
		b.releaseDestination()
		return nil, err
	}
	if r.byKey == nil {
		r.byKey = make(map[string]*durable)
	}
	r.byKey[key] = d
	r.count.Add(1)
	return d, nil
}

// makeDurable makes the queue of a durable subscription, opened in the Store if there is one, and
// binds it to its destination. The caller holds b.durables.mu.
func (b *Broker) makeDurable(spec DurableSubscription, restoring bool) (*durable, error) {
	d := &durable{DurableSubscription: spec}
	policy := b.resolvePolicy(spec.Destination)
	d.queue = &queue{dest: spec.Destination, kind: KindTopic, maxDepth: policy.maxQueueDepth, maxBytes: policy.maxQueueBytes,
		policy: policy, counts: &d.counts}
	if st := b.opts.Store; st != nil {
		sq, err := st.OpenQueue(durablePrefix+durableKey(spec.User, spec.Name), d.queue)
		if err != nil {
			return nil, fmt.Errorf("%w: durable subscription %q: %w", ErrStoreUnavailable, spec.Name, err)
		}
		d.queue.store = sq
	}
	d.restoring.Store(restoring)
	d.binding = b.bind(spec.Destination, &durableBinding{b: b, d: d})
	d.restoring.Store(false)
	return d, nil
}

// discardDurable undoes makeDurable for a durable subscription that was not made after all: its
// binding ends, and its queue, which has no consumer yet, is removed, from the Store too when the
// store holds nothing for it, so that nothing is left there under its name. A store queue with
// messages is left alone: in a cluster it may be the same durable subscription recorded by another
// node, and its messages are not this failure's to drop. The caller holds b.durables.mu.
func (b *Broker) discardDurable(d *durable) {
	b.unbind(d.binding)
	d.queue.remove()
	if st := d.queue.store; st != nil {
		if n, _ := st.Stored(); n > 0 {
			return
		}
		if err := st.Delete(); err != nil {
			b.log.Warn("the stored queue of a durable subscription not made was not removed", "subscription", d.Name, "error", err)
		}
	}
}

// bind subscribes s to topic or pattern dest in auto-ack mode for the broker's own use: the
// subscription is not counted and observers are not told.
func (b *Broker) bind(dest string, s Subscriber) *Subscription {
	sub := &Subscription{id: b.subSeq.Add(1), dest: dest, kind: KindTopic, subscriber: s}
	if name := strings.TrimPrefix(dest, topicPrefix); hasWildcardWord(name) {
		sub.pattern = normalizePattern(name)
		b.subscribePattern(sub)
	} else {
		b.subscribeExactTopic(sub)
	}
	// Not watched on the backplane: in a cluster each node keeps for a durable subscription what is
	// published on it (see durableBinding.Deliver), so other nodes' messages need not come here.
	return sub
}

// unbind ends a subscription made by bind.
func (b *Broker) unbind(sub *Subscription) {
	if sub.pattern != "" {
		b.patterns.remove(sub)
	} else {
		b.unsubscribeExactTopic(sub)
	}
}

// durableBinding is the subscriber of a durable subscription's binding: it keeps every message in the
// durable subscription's queue.
type durableBinding struct {
	b *Broker
	d *durable
}

// Deliver keeps the message, or counts it when the queue is full (or its store refuses it); it always
// answers Delivered, so the topic's slow-consumer policy never applies to the binding. It runs under
// the shard or trie lock and the binding's lock, and takes the queue's lock: see the lock order.
func (x *durableBinding) Deliver(_ *Subscription, dl Delivery) DeliverResult {
	if (dl.Retained || dl.History) && x.d.restoring.Load() {
		return Delivered // kept before the restart
	}
	if dl.Message.remote {
		// In a cluster every node binds every durable subscription, and each keeps the messages
		// published on it: the queue is shared, so each message is kept once.
		return Delivered
	}
	if err := x.d.queue.publish(dl.Message, x.refused); err != nil {
		x.refused(err)
	}
	return Delivered
}

// refused counts a message the durable subscription could not keep.
func (x *durableBinding) refused(err error) {
	if x.b.durables.full.Add(1) == 1 || errors.Is(err, ErrStoreUnavailable) {
		x.b.log.Warn("a durable subscription did not keep a message", "subscription", x.d.Name, "user", x.d.User,
			"destination", x.d.Destination, "error", err)
	}
}

// Evict never happens: Deliver never refuses.
func (x *durableBinding) Evict(*Subscription, error) {}

// DeleteDurable removes the durable subscription name of user: its binding, the messages it keeps
// (in the store too), and its current subscriptions, which end without Evict, observers being told
// on the calling goroutine. It returns ErrNoDurable if there is none.
func (b *Broker) DeleteDurable(user, name string) error {
	r := &b.durables
	r.mu.Lock()
	defer r.mu.Unlock()
	key := durableKey(user, name)
	d := r.byKey[key]
	if d == nil {
		return fmt.Errorf("%w: %q", ErrNoDurable, name)
	}
	if ds := b.opts.Durables; ds != nil {
		if err := ds.DropDurable(user, name); err != nil {
			return fmt.Errorf("%w: deleting durable subscription %q: %w", ErrStoreUnavailable, name, err)
		}
	}
	b.unregisterDurable(key, d)
	if st := d.queue.store; st != nil {
		if err := st.Delete(); err != nil {
			b.log.Warn("the stored messages of a deleted durable subscription were not removed", "subscription", name, "error", err)
		}
	}
	return nil
}

// unregisterDurable removes d, registered under key, from this broker: its binding, its queue and
// the subscriptions consuming it, which end (observers are told). The caller holds b.durables.mu.
func (b *Broker) unregisterDurable(key string, d *durable) {
	r := &b.durables
	delete(r.byKey, key)
	r.count.Add(-1)
	b.releaseDestination()
	b.unbind(d.binding)
	ended := d.queue.remove()
	b.subCounts[KindTopic].Add(int64(-len(ended)))
	for _, s := range ended {
		b.notify(s, false)
	}
}

// EnsureDurable makes the durable subscription spec on this broker if it has none of that user and
// name, without recording it in Options.Durables: in a cluster, a node (this one or another) made it
// and recorded it at revision, the store's revision of the record (see DurableStore.KeepDurable), and
// this node binds it too, so that the messages published here are kept for it. A durable
// subscription this broker has already takes revision if it is newer than its own.
func (b *Broker) EnsureDurable(spec DurableSubscription, revision uint64) error {
	_, err := b.durableFor(spec, Identity{}, false, revision)
	return err
}

// ForgetDurable removes the durable subscription of user and name from this broker only (its
// binding, and the subscriptions consuming it here, which end), leaving the store alone: in a
// cluster, a node deleted its record at revision (the store's revision of the deletion), and deleted
// what it kept. Removals are versioned: one this broker made or learned of at revision or later
// (from KeepDurable or EnsureDurable) is kept, as it was made again after that deletion, whose
// notice came late (a node that deletes and at once makes again a durable subscription sees its
// own deletion's notice after it). math.MaxUint64 removes it whatever its revision.
func (b *Broker) ForgetDurable(user, name string, revision uint64) {
	r := &b.durables
	r.mu.Lock()
	defer r.mu.Unlock()
	key := durableKey(user, name)
	if d := r.byKey[key]; d != nil && d.revision < revision {
		b.unregisterDurable(key, d)
	}
}

// restoreDurables makes again the durable subscriptions Options.Durables kept. Called once, by New.
func (b *Broker) restoreDurables() {
	ds := b.opts.Durables
	if ds == nil {
		return
	}
	list, err := ds.LoadDurables()
	if err != nil {
		b.log.Error("durable subscriptions could not be loaded; they start again when their subscribers return", "error", err)
		return
	}
	for _, spec := range list {
		r := &b.durables
		r.mu.Lock()
		if err := b.reserveDestination(Identity{}); err != nil {
			r.mu.Unlock()
			b.log.Warn("a durable subscription was not restored", "subscription", spec.Name, "error", err)
			continue
		}
		d, err := b.makeDurable(spec, true)
		if err != nil {
			b.releaseDestination()
			r.mu.Unlock()
			b.log.Warn("a durable subscription was not restored", "subscription", spec.Name, "error", err)
			continue
		}
		if r.byKey == nil {
			r.byKey = make(map[string]*durable)
		}
		r.byKey[durableKey(spec.User, spec.Name)] = d
		r.count.Add(1)
		r.mu.Unlock()
	}
	if len(list) > 0 {
		b.log.Info("durable subscriptions restored", "subscriptions", b.durables.count.Load())
	}
}

// addDurableStats adds the durable subscriptions, their queues' messages and deliveries to st.
func (b *Broker) addDurableStats(st *Stats) {
	r := &b.durables
	r.mu.Lock()
	list := make([]*durable, 0, len(r.byKey))
	for _, d := range r.byKey {
		list = append(list, d)
	}
	r.mu.Unlock()
	st.DurableSubscriptions = len(list)
	st.DroppedDurableFull = r.full.Load()
	for _, d := range list {
		d.queue.addStats(st)
		st.Delivered[KindTopic] += d.counts.delivered[KindTopic].Load()
		st.Redelivered += d.counts.redelivered.Load()
	}
}
