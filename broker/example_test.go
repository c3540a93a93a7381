package broker_test

import (
	"fmt"

	"github.com/stompd/stompd/broker"
)

// printer is a Subscriber that prints what it receives. A real one would
// encode a frame and enqueue it on a connection without blocking.
type printer struct{ name string }

func (p printer) Deliver(sub *broker.Subscription, d broker.Delivery) broker.DeliverResult {
	fmt.Printf("%s got %q from %s (tag %d)\n", p.name, d.Message.Body, d.Message.Destination, d.Tag)
	return broker.Delivered
}

func (p printer) Evict(sub *broker.Subscription, err error) {
	fmt.Printf("%s evicted: %v\n", p.name, err)
}

func Example() {
	b := broker.New(broker.Options{NodeID: "node1"})

	// Topics: every matching subscription gets the message.
	b.Subscribe("/topic/stocks.eur", printer{"exact"}, broker.SubscribeOptions{})
	b.Subscribe("/topic/stocks.*", printer{"wildcard"}, broker.SubscribeOptions{})
	b.Publish(&broker.Message{Destination: "/topic/stocks.eur", Body: []byte("1.08")})

	// Queues hold messages until a consumer comes, and track acknowledgements.
	b.Publish(&broker.Message{Destination: "/queue/orders", Body: []byte("order 1")})
	sub, _ := b.Subscribe("/queue/orders", printer{"worker"}, broker.SubscribeOptions{AckMode: broker.AckClientIndividual})
	fmt.Println("unacked:", sub.Unacked())
	b.Ack(sub, 1, false)
	fmt.Println("unacked:", sub.Unacked())

	// Output:
	// exact got "1.08" from /topic/stocks.eur (tag 0)
	// wildcard got "1.08" from /topic/stocks.eur (tag 0)
	// worker got "order 1" from /queue/orders (tag 1)
	// unacked: 1
	// unacked: 0
}

// Example_policies shows destination policies: a read-only price feed that
// keeps its last value and conflates for lagging subscribers, and a chat room
// whose new members get the recent history.
func Example_policies() {
	b := broker.New(broker.Options{
		NodeID: "node1",
		Policies: []broker.DestinationPolicy{
			{Pattern: "/topic/stocks.#", ReadOnly: true, LastValue: true, SlowConsumer: broker.PolicyConflate},
			{Pattern: "/topic/chat.*", History: 2},
		},
	})

	// In-process publishers are the server (zero Identity); clients are not.
	b.Publish(&broker.Message{Destination: "/topic/stocks.eur", Body: []byte("1.08")})
	err := b.Publish(&broker.Message{Destination: "/topic/stocks.eur", Body: []byte("9.99"),
		Sender: broker.Identity{Session: "s1", Name: "mallory"}})
	fmt.Println(err)

	for _, line := range []string{"hi", "hello", "anyone?"} {
		b.Publish(&broker.Message{Destination: "/topic/chat.lobby", Body: []byte(line),
			Sender: broker.Identity{Session: "s2", Name: "bob"}})
	}

	// New subscriptions get the last value and the history first.
	b.Subscribe("/topic/stocks.*", printer{"prices"}, broker.SubscribeOptions{})
	b.Subscribe("/topic/chat.lobby", printer{"alice"}, broker.SubscribeOptions{})

	// Output:
	// destination "/topic/stocks.eur" is read-only
	// prices got "1.08" from /topic/stocks.eur (tag 0)
	// alice got "hello" from /topic/chat.lobby (tag 0)
	// alice got "anyone?" from /topic/chat.lobby (tag 0)
}
