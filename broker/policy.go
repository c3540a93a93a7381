package broker

import "strconv"

// SlowConsumerPolicy says what a topic does with a subscription that falls
// behind: its subscriber answers Full, or its client-ack window is full.
type SlowConsumerPolicy uint8

// Slow-consumer policies.
const (
	// PolicyDisconnect stops delivering to the subscription and calls
	// Subscriber.Evict with ErrSlowConsumer. The default.
	PolicyDisconnect SlowConsumerPolicy = iota
)

// String returns "disconnect".
func (p SlowConsumerPolicy) String() string {
	switch p {
	case PolicyDisconnect:
		return "disconnect"
	}
	return "SlowConsumerPolicy(" + strconv.Itoa(int(p)) + ")"
}

// DestinationPolicy configures the destinations that match Pattern, using
// MatchTopic rules on the whole destination: "/topic/stocks.#",
// "/queue/orders.*", or "#" for everything. Among Options.Policies the first
// matching policy wins; destinations matching none get the defaults.
type DestinationPolicy struct {
	Pattern string
	// SlowConsumer applies to topics only. Default PolicyDisconnect.
	SlowConsumer SlowConsumerPolicy
	// MaxQueueDepth applies to queues and reply queues only; 0 means
	// Options.MaxQueueDepth.
	MaxQueueDepth int
}

// resolvedPolicy is a destination's policy with defaults filled in. It is
// computed once per topic entry or queue, so publishing never walks the
// policy list.
type resolvedPolicy struct {
	slowConsumer  SlowConsumerPolicy
	maxQueueDepth int
}

func (b *Broker) resolvePolicy(dest string) resolvedPolicy {
	for _, p := range b.opts.Policies {
		if MatchTopic(p.Pattern, dest) {
			rp := resolvedPolicy{slowConsumer: p.SlowConsumer, maxQueueDepth: p.MaxQueueDepth}
			if rp.maxQueueDepth <= 0 {
				rp.maxQueueDepth = b.opts.MaxQueueDepth
			}
			return rp
		}
	}
	return resolvedPolicy{slowConsumer: PolicyDisconnect, maxQueueDepth: b.opts.MaxQueueDepth}
}
