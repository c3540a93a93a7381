package broker

import (
	"slices"
	"sync"
	"sync/atomic"
)

// SubscriptionEvent reports a subscription added or removed, to observers
// registered with Observe.
type SubscriptionEvent struct {
	Subscription *Subscription
	// Subscribed is true when the subscription was added, false when it was
	// removed: by Unsubscribe (also after a slow-consumer eviction, which
	// is followed by its owner's Unsubscribe) or by DeleteQueue.
	Subscribed bool
}

// observerList is copied on write, so that Subscribe and Unsubscribe read
// it with one atomic load and no lock.
type observerList struct {
	mu   sync.Mutex // serialises writers
	list atomic.Pointer[[]*observer]
}

type observer struct {
	pattern string
	f       func(SubscriptionEvent)
	stopped atomic.Bool
}

// Observe calls f for every subscription added or removed whose
// Destination() matches pattern (MatchTopic(pattern, sub.Destination()), so
// "/topic/chat.#" sees subscriptions to chat rooms and "#" sees all). f runs
// synchronously on the goroutine that subscribed or unsubscribed, with no
// broker lock held: after the subscription is live and has had its queue
// backlog or retained messages, or after it is gone. f may call any Broker
// method, Publish and DeliverTo included; it delays the caller of Subscribe
// or Unsubscribe, so it should be quick.
//
// Events of one subscription come in order (added, then removed). f may run
// concurrently for different subscriptions. The returned func stops
// observing; it may be called more than once and from f. An event already
// being dispatched when stop is called may still reach f. f must not be
// nil.
func (b *Broker) Observe(pattern string, f func(SubscriptionEvent)) (stop func()) {
	if f == nil {
		panic("broker: Observe with nil func")
	}
	o := &observer{pattern: pattern, f: f}
	b.observers.update(func(l []*observer) []*observer { return append(l, o) })
	var once sync.Once
	return func() {
		once.Do(func() {
			o.stopped.Store(true)
			b.observers.update(func(l []*observer) []*observer {
				return slices.DeleteFunc(l, func(x *observer) bool { return x == o })
			})
		})
	}
}

// update replaces the list with edit applied to a copy of it.
func (ol *observerList) update(edit func([]*observer) []*observer) {
	ol.mu.Lock()
	defer ol.mu.Unlock()
	var cur []*observer
	if p := ol.list.Load(); p != nil {
		cur = *p
	}
	next := edit(slices.Clone(cur))
	if len(next) == 0 {
		ol.list.Store(nil)
		return
	}
	ol.list.Store(&next)
}

// notify tells the matching observers about sub. The caller holds no broker
// lock.
func (b *Broker) notify(sub *Subscription, subscribed bool) {
	p := b.observers.list.Load()
	if p == nil {
		return
	}
	for _, o := range *p {
		if !o.stopped.Load() && MatchTopic(o.pattern, sub.dest) {
			o.f(SubscriptionEvent{Subscription: sub, Subscribed: subscribed})
		}
	}
}
