package main

import (
	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/metrics"
)

// kindLabels maps the broker's destination kinds onto the metrics label values.
var kindLabels = [...]struct {
	broker  broker.Kind
	metrics metrics.Kind
}{
	{broker.KindTopic, metrics.KindTopic},
	{broker.KindQueue, metrics.KindQueue},
	{broker.KindReplyQueue, metrics.KindReplyQueue},
	{broker.KindApp, metrics.KindApp},
}

// brokerStats converts a broker snapshot into what the metrics export at scrape time. The broker knows
// nothing of Prometheus and the metrics nothing of the broker; this is where they meet.
func brokerStats(s broker.Stats) metrics.BrokerStats {
	var out metrics.BrokerStats
	for _, k := range kindLabels {
		out.Subscriptions[k.metrics] = s.SubscriptionsByKind[k.broker]
		out.Destinations[k.metrics] = s.Destinations[k.broker]
		out.Published[k.metrics] = s.Published[k.broker]
		out.Delivered[k.metrics] = s.Delivered[k.broker]
	}
	out.ReadyMessages = s.QueuedMessages
	out.UnackedMessages = s.UnackedMessages
	out.Redelivered = s.Redelivered
	out.Dropped[metrics.DropNoRoute] = s.DroppedNoRoute
	out.Dropped[metrics.DropSlowConsumer] = s.Evictions
	out.Dropped[metrics.DropConflated] = s.Conflated
	out.Dropped[metrics.DropDroppedOldest] = s.DroppedOldest
	out.HeldBytes[metrics.HeldQueued] = s.QueuedBytes
	out.HeldBytes[metrics.HeldUnacked] = s.UnackedBytes
	out.HeldBytes[metrics.HeldLagging] = s.HeldBytes
	out.HeldBytes[metrics.HeldRetained] = s.RetainedBytes + s.StreamBytes
	out.Streams = s.Streams
	out.DurableSubscriptions = s.DurableSubscriptions
	out.Dropped[metrics.DropDurableFull] = s.DroppedDurableFull
	return out
}
