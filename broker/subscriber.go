package broker

import "strconv"

// AckMode says whether and how a subscription acknowledges its deliveries.
type AckMode uint8

// Acknowledgement modes, as in STOMP.
const (
	// AckAuto: a delivery is complete once Deliver returns Delivered. Nothing
	// is tracked and tags are 0.
	AckAuto AckMode = iota
	// AckClient: deliveries stay unacknowledged until an Ack; an Ack is
	// cumulative (it covers every earlier delivery of the subscription).
	AckClient
	// AckClientIndividual: like AckClient, but each delivery is acknowledged
	// on its own.
	AckClientIndividual
)

// String returns "auto", "client" or "client-individual".
func (a AckMode) String() string {
	switch a {
	case AckAuto:
		return "auto"
	case AckClient:
		return "client"
	case AckClientIndividual:
		return "client-individual"
	}
	return "AckMode(" + strconv.Itoa(int(a)) + ")"
}

// SubscribeOptions configures one subscription. The zero value is auto
// acknowledgement with the broker's default prefetch, owned by the server.
type SubscribeOptions struct {
	AckMode AckMode
	// Owner is who holds the subscription, reported by Subscription.Owner
	// (for presence, through Observe). The broker does not otherwise look
	// at it. The zero Identity is the server.
	Owner Identity
	// Prefetch bounds the unacknowledged deliveries of this subscription in
	// the client modes; once reached, a queue holds further messages back and
	// a topic applies its slow-consumer policy. 0 (or negative) means
	// Options.DefaultPrefetch; if that is 0 too, queues are bounded only by
	// the subscriber answering Full and topics by Options.MaxTopicUnacked.
	// Ignored in AckAuto mode.
	Prefetch int
	// UnackedLimit, when not nil, also bounds the unacknowledged deliveries
	// of this subscription together with every other subscription sharing
	// it (see UnackedLimit). Ignored in AckAuto mode.
	UnackedLimit *UnackedLimit
	// From, on a stream destination (DestinationPolicy.Stream), makes the
	// subscription read the stream's kept messages from this starting
	// point, then the live ones, paced by the subscriber's room. Nil
	// subscribes to the live messages only. On any other destination
	// Subscribe fails with ErrNotStream.
	From *StreamStart
	// Durable, on a topic or topic pattern, names a durable subscription
	// of Owner.User: the subscription consumes the messages it kept while
	// nobody was subscribed, then the live ones, with queue semantics
	// (see DurableStore). A durable subscription of that name and user is
	// made if there is none; one with another destination is
	// ErrDurableMismatch. Unsubscribe leaves it in place: DeleteDurable
	// removes it. Ignored on queues, which keep their messages anyway.
	Durable string
}

// DeliverResult is a Subscriber's answer to one delivery.
type DeliverResult uint8

// Answers to Deliver.
const (
	// Delivered: the subscriber took the message.
	Delivered DeliverResult = iota
	// Full: no room now. A queue keeps the message and stops offering to this
	// subscription until Resume; a topic applies its slow-consumer policy.
	Full
	// Closed: the subscriber is going away and did not take the message. A
	// queue treats it like Full; a topic skips the subscription.
	Closed
)

// String returns "delivered", "full" or "closed".
func (r DeliverResult) String() string {
	switch r {
	case Delivered:
		return "delivered"
	case Full:
		return "full"
	case Closed:
		return "closed"
	}
	return "DeliverResult(" + strconv.Itoa(int(r)) + ")"
}

// Delivery is one message offered to one subscription.
type Delivery struct {
	Message *Message // shared by all deliveries; read-only
	// Tag identifies the delivery for Ack and Nack. It starts at 1 and rises
	// strictly, per subscription, in delivery order; 0 in AckAuto mode.
	Tag uint64
	// Redelivered is true for a queue message that was delivered before and
	// came back: NACKed, or its consumer unsubscribed without acknowledging.
	Redelivered bool
	// Retained is true for a topic destination's last value, delivered
	// because the subscription is new rather than because it was just
	// published (DestinationPolicy.LastValue).
	Retained bool
	// History is true for a message from a topic destination's history,
	// delivered, oldest first, because the subscription is new
	// (DestinationPolicy.History).
	History bool
}

// Subscriber receives the deliveries of a subscription; a protocol session
// implements it.
//
// The broker calls Deliver and Evict from publishers' goroutines, and from
// whichever goroutine calls Subscribe (queue backlog, retained messages),
// DeliverTo, Ack, Nack, Resume or Unsubscribe, with internal locks held.
// Calls for one subscription never overlap, but calls for different
// subscriptions of the same Subscriber may run concurrently. Neither method
// may block, and neither may call back into the Broker, with one exception
// for Deliver: it may call Resume for its own subscription or for any topic
// subscription, because room can appear as soon as it answers Full (see the
// package doc's lock order).
type Subscriber interface {
	// Deliver offers d to sub. See DeliverResult for the answers.
	Deliver(sub *Subscription, d Delivery) DeliverResult
	// Evict tells the subscriber that a slow-consumer policy cut sub off; err
	// is ErrSlowConsumer. It is called at most once per subscription, and no
	// Deliver follows it. The subscriber is expected to end the subscription
	// asynchronously: its owner calls Unsubscribe later.
	Evict(sub *Subscription, err error)
}
