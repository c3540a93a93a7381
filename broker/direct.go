package broker

import "fmt"

// DeliverTo delivers m to sub alone, through sub's Subscriber, as Publish
// would deliver it to that one subscription: the slow-consumer policy of
// m.Destination applies if the subscriber has no room, and in the client
// ack modes the delivery is tracked for Ack and Nack like any other. Nothing
// is retained, no other subscription sees m, and ReadOnly policies do not
// apply (this is how the server answers one subscriber, e.g. with the
// current presence list when it joins). m.Destination, set by the caller,
// must be a topic destination; it need not be the one sub subscribed to.
// DeliverTo fills m.Kind, m.ID and m.Published like Publish, after which m
// must not be modified.
//
// Safe for concurrent use, and from an Observe callback; not from
// Subscriber.Deliver. Errors: ErrInvalidDestination if sub is not a topic
// subscription or m.Destination is not a valid topic, ErrNoRoute if sub has
// ended or been evicted (including by this delivery).
func (b *Broker) DeliverTo(sub *Subscription, m *Message) error {
	if sub.kind != KindTopic {
		return fmt.Errorf("%w %q: DeliverTo takes topic subscriptions only", ErrInvalidDestination, sub.dest)
	}
	kind, err := ParseDestination(m.Destination)
	if err != nil {
		return err
	}
	if kind != KindTopic {
		return fmt.Errorf("%w %q: DeliverTo sends to topics only", ErrInvalidDestination, m.Destination)
	}
	if m.Kind != kind {
		m.Kind = kind
	}
	b.stamp(m)
	st := topicPublish{b: b, msg: m, policy: b.topicPolicy(m.Destination)}
	st.deliver(sub)
	b.shardFor(m.Destination).counts.addDelivered(KindTopic, st.taken())
	if st.delivered == 0 && sub.ended() {
		return fmt.Errorf("%w: subscription %d (%s) has ended", ErrNoRoute, sub.id, sub.dest)
	}
	return nil
}

// ended reports whether s has been removed or evicted.
func (s *Subscription) ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removed || s.evicted.Load()
}
