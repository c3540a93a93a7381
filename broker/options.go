package broker

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
)

// Defaults applied by New to zero (or negative) Options fields.
const (
	// DefaultMaxQueueDepth is the default Options.MaxQueueDepth, in messages.
	DefaultMaxQueueDepth = 100_000
	// DefaultMaxQueueBytes is the default Options.MaxQueueBytes: 64 MiB, sixteen messages of the
	// largest frame the server takes by default, or 65,000 of 1 KiB.
	DefaultMaxQueueBytes = 64 << 20
	// DefaultMaxRetainedBytes is the default Options.MaxRetainedBytes: 256 MiB.
	DefaultMaxRetainedBytes = 256 << 20
	// DefaultMaxDestinations is the default Options.MaxDestinations.
	DefaultMaxDestinations = 100_000
	// DefaultMaxTopicUnacked is the default Options.MaxTopicUnacked, in
	// deliveries.
	DefaultMaxTopicUnacked = 10_000
)

// Options configures a Broker. The zero value is ready to use.
type Options struct {
	// NodeID prefixes generated message IDs ("<NodeID>-<seq>"). Default: 8
	// random hex characters, so that brokers sharing a backplane do not clash.
	NodeID string
	// MaxQueueDepth is the number of ready (not yet delivered) messages a
	// queue holds before Publish fails with ErrQueueFull. Unacknowledged and
	// requeued messages do not count against a publish. Default
	// DefaultMaxQueueDepth; a matching DestinationPolicy may override it.
	MaxQueueDepth int
	// MaxQueueBytes is the total Message.Size of the ready messages a queue
	// holds before Publish fails with ErrQueueFull, so that a few large
	// messages cannot make a queue hold more memory than its depth suggests.
	// As with MaxQueueDepth, unacknowledged and requeued messages do not count
	// against a publish. Default DefaultMaxQueueBytes; a matching
	// DestinationPolicy may override it.
	MaxQueueBytes int
	// MaxDestinations bounds the destinations that hold state however few
	// subscribers they have: queues, reply queues, and topics that retain
	// messages (counted from the first message they retain). Creating one
	// more fails with ErrTooManyDestinations. Topics without retention are
	// not counted: they hold nothing once their subscriptions end. Default
	// DefaultMaxDestinations; negative means no bound.
	MaxDestinations int
	// MaxRetainedBytes bounds the total Message.Size of the messages all topic
	// destinations retain (LastValue and History policies). Nothing drains
	// retained messages, so without a bound of their own, publishers allowed to
	// retain could fill memory for good. A publish whose retention would take
	// the total past it fails with ErrRetainedFull; one that replaces a retained
	// message by one no larger always succeeds. Default DefaultMaxRetainedBytes;
	// negative means no bound.
	MaxRetainedBytes int64
	// Store keeps /queue/ messages beyond the process (see Store); nil keeps
	// them in memory.
	Store Store
	// Retained keeps the retained messages of topics beyond the process (see
	// RetainedStore); nil keeps them in memory.
	Retained RetainedStore
	// Streams keeps the messages of stream destinations (DestinationPolicy.Stream)
	// beyond the process (see StreamStore); nil keeps them in memory.
	Streams StreamStore
	// Durables keeps the durable topic subscriptions (SubscribeOptions.Durable)
	// beyond the process (see DurableStore); nil keeps them as long as the
	// broker. Their messages are kept by Store.
	Durables DurableStore
	// Backplane carries topic messages to and from the other nodes of a
	// cluster (see Backplane); nil for a broker on its own.
	Backplane Backplane
	// DefaultPrefetch is the Prefetch of subscriptions that give none.
	// Default 0: unlimited for queues (bounded only by the subscriber
	// answering Full) and MaxTopicUnacked for topics.
	DefaultPrefetch int
	// MaxTopicUnacked bounds the unacknowledged deliveries of a client-ack
	// topic subscription with no prefetch. Reaching it counts as falling
	// behind. Default DefaultMaxTopicUnacked.
	MaxTopicUnacked int
	// Policies configure destinations by pattern (see DestinationPolicy).
	// The first matching policy wins; New copies the slice.
	Policies []DestinationPolicy
	// Logger receives debug events such as evictions. Default: discard.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.NodeID == "" {
		var b [4]byte
		rand.Read(b[:]) // never fails: crypto/rand panics instead of returning an error
		o.NodeID = hex.EncodeToString(b[:])
	}
	if o.MaxQueueDepth <= 0 {
		o.MaxQueueDepth = DefaultMaxQueueDepth
	}
	if o.MaxQueueBytes <= 0 {
		o.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if o.MaxDestinations == 0 {
		o.MaxDestinations = DefaultMaxDestinations
	}
	if o.MaxRetainedBytes == 0 {
		o.MaxRetainedBytes = DefaultMaxRetainedBytes
	}
	if o.DefaultPrefetch < 0 {
		o.DefaultPrefetch = 0
	}
	if o.MaxTopicUnacked <= 0 {
		o.MaxTopicUnacked = DefaultMaxTopicUnacked
	}
	o.Policies = append([]DestinationPolicy(nil), o.Policies...)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
