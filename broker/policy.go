package broker

import (
	"fmt"
	"strconv"
	"strings"
)

// SlowConsumerPolicy says what a topic does with a subscription that falls
// behind: its subscriber answers Full, or its client-ack window is full.
type SlowConsumerPolicy uint8

// Slow-consumer policies.
const (
	// PolicyDisconnect stops delivering to the subscription and calls
	// Subscriber.Evict with ErrSlowConsumer. The default.
	PolicyDisconnect SlowConsumerPolicy = iota
	// PolicyConflate keeps, for the lagging subscription, only the newest
	// undelivered message of each destination and delivers those on Resume.
	// Right for prices, where only the latest value matters. The
	// subscription is never evicted for lag.
	PolicyConflate
	// PolicyDropOldest keeps the lagging subscription's undelivered
	// messages in a bounded FIFO, discarding the oldest when it is full, and
	// delivers them on Resume. The subscription is never evicted for lag.
	PolicyDropOldest
)

// String returns "disconnect", "conflate" or "drop-oldest".
func (p SlowConsumerPolicy) String() string {
	switch p {
	case PolicyDisconnect:
		return "disconnect"
	case PolicyConflate:
		return "conflate"
	case PolicyDropOldest:
		return "drop-oldest"
	}
	return "SlowConsumerPolicy(" + strconv.Itoa(int(p)) + ")"
}

// ParseSlowConsumerPolicy returns the policy named s, as String spells it,
// ignoring case and surrounding space. Other names give ErrInvalidPolicy.
func ParseSlowConsumerPolicy(s string) (SlowConsumerPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "disconnect":
		return PolicyDisconnect, nil
	case "conflate":
		return PolicyConflate, nil
	case "drop-oldest":
		return PolicyDropOldest, nil
	}
	return 0, fmt.Errorf("%w %q: want disconnect, conflate or drop-oldest", ErrInvalidPolicy, s)
}

// MarshalText implements encoding.TextMarshaler, so that configuration
// formats write the policy by name. Unknown values give ErrInvalidPolicy.
func (p SlowConsumerPolicy) MarshalText() ([]byte, error) {
	if p > PolicyDropOldest {
		return nil, fmt.Errorf("%w: %d", ErrInvalidPolicy, p)
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with
// ParseSlowConsumerPolicy.
func (p *SlowConsumerPolicy) UnmarshalText(text []byte) error {
	v, err := ParseSlowConsumerPolicy(string(text))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// DefaultMaxPending is the default DestinationPolicy.MaxPending, in messages.
const DefaultMaxPending = 100

// DestinationPolicy configures the destinations that match Pattern, using
// MatchTopic rules on the whole destination: "/topic/stocks.#",
// "/queue/orders.*", or "#" for everything. Among Options.Policies the first
// matching policy wins; destinations matching none get the defaults. Each
// destination's policy is resolved once and cached, so the number of
// policies does not slow publishing down.
type DestinationPolicy struct {
	Pattern string
	// SlowConsumer applies to topics only. Default PolicyDisconnect.
	SlowConsumer SlowConsumerPolicy
	// MaxPending bounds what a lagging subscription holds under
	// PolicyConflate (distinct destinations) or PolicyDropOldest
	// (messages); beyond it the oldest held message is discarded and counted
	// in Stats.DroppedOldest. 0 (or negative) means DefaultMaxPending.
	MaxPending int
	// LastValue makes a topic destination retain its newest message, even
	// while nobody subscribes; a new subscription to it (or to a pattern
	// matching it) gets that message first, marked Delivery.Retained.
	LastValue bool
	// History makes a topic destination retain its last History messages;
	// a new subscription gets them first, oldest first, marked
	// Delivery.History. It supersedes LastValue. 0 (or negative) keeps none.
	History int
	// ReadOnly refuses publishes whose Message.Sender is not the server:
	// Publish fails with ErrReadOnly. Applies to every kind of destination.
	ReadOnly bool
	// MaxQueueDepth applies to queues and reply queues only; 0 means
	// Options.MaxQueueDepth.
	MaxQueueDepth int
	// MaxQueueBytes applies to queues and reply queues only; 0 means
	// Options.MaxQueueBytes.
	MaxQueueBytes int
	// Stream makes a topic destination a stream: it keeps its messages,
	// numbered by offset (Message.Offset), within StreamLimits, so that a
	// subscription can read them from a starting point
	// (SubscribeOptions.From). Live subscribers are served as on any topic.
	// Kept in memory, or in Options.Streams. Applies to topics only.
	Stream bool
	// StreamLimits bound what a stream keeps; when all three are zero,
	// MaxBytes is DefaultStreamMaxBytes.
	StreamLimits StreamLimits
}

// resolvedPolicy is a policy with defaults filled in. The broker builds one
// per DestinationPolicy, plus the default, in New; destinations point at
// them, so that publishing never walks the policy list.
type resolvedPolicy struct {
	slowConsumer  SlowConsumerPolicy
	maxPending    int
	retain        int  // topic messages retained per destination; 0 = none
	history       bool // retained messages are a history (else the last value)
	readOnly      bool
	maxQueueDepth int
	maxQueueBytes int
	streamed      bool         // a topic destination keeps its messages as a stream
	stream        StreamLimits // with defaults filled in; when streamed
}

func newResolvedPolicies(o Options) (policies []resolvedPolicy, fallback resolvedPolicy) {
	policies = make([]resolvedPolicy, len(o.Policies))
	for i, p := range o.Policies {
		rp := resolvedPolicy{
			slowConsumer:  p.SlowConsumer,
			maxPending:    p.MaxPending,
			readOnly:      p.ReadOnly,
			maxQueueDepth: p.MaxQueueDepth,
			maxQueueBytes: p.MaxQueueBytes,
		}
		if rp.maxPending <= 0 {
			rp.maxPending = DefaultMaxPending
		}
		if rp.maxQueueDepth <= 0 {
			rp.maxQueueDepth = o.MaxQueueDepth
		}
		if rp.maxQueueBytes <= 0 {
			rp.maxQueueBytes = o.MaxQueueBytes
		}
		if p.Stream {
			rp.streamed, rp.stream = true, p.StreamLimits
			if rp.stream == (StreamLimits{}) {
				rp.stream.MaxBytes = DefaultStreamMaxBytes
			}
		}
		switch {
		case p.History > 0:
			rp.retain, rp.history = p.History, true
		case p.LastValue:
			rp.retain = 1
		}
		policies[i] = rp
	}
	fallback = resolvedPolicy{slowConsumer: PolicyDisconnect, maxPending: DefaultMaxPending, maxQueueDepth: o.MaxQueueDepth, maxQueueBytes: o.MaxQueueBytes}
	return policies, fallback
}

// resolvePolicy walks the policy list. It is called once per destination
// (when its topic entry, queue or app route is made, or on a policy cache
// miss), never per message.
func (b *Broker) resolvePolicy(dest string) *resolvedPolicy {
	for i := range b.opts.Policies {
		if MatchTopic(b.opts.Policies[i].Pattern, dest) {
			return &b.policies[i]
		}
	}
	return &b.defaultPolicy
}

// checkWritable returns ErrReadOnly, naming the destination, when p refuses
// m's sender.
func (p *resolvedPolicy) checkWritable(m *Message) error {
	if p.readOnly && !m.Sender.IsServer() {
		return &readOnlyError{dest: m.Destination}
	}
	return nil
}

// policyCacheLimit bounds the per-shard cache of policies for topic
// destinations that have no entry (no exact subscription, nothing
// retained). Past it an arbitrary cached destination is forgotten; it is
// resolved again on its next publish.
const policyCacheLimit = 1024

// topicPolicy returns the policy of topic dest without creating anything
// but a cache entry.
func (b *Broker) topicPolicy(dest string) *resolvedPolicy {
	if len(b.policies) == 0 {
		return &b.defaultPolicy
	}
	sh := b.shardFor(dest)
	sh.mu.RLock()
	var p *resolvedPolicy
	if e := sh.topics[dest]; e != nil {
		p = e.policy
	} else {
		p = sh.policies[dest]
	}
	sh.mu.RUnlock()
	if p != nil {
		return p
	}
	p = b.resolvePolicy(dest)
	sh.mu.Lock()
	sh.cachePolicy(dest, p)
	sh.mu.Unlock()
	return p
}

// cachePolicy remembers p for dest. The caller holds the shard write lock.
func (sh *shard) cachePolicy(dest string, p *resolvedPolicy) {
	if sh.policies == nil {
		sh.policies = make(map[string]*resolvedPolicy)
	}
	if _, ok := sh.policies[dest]; ok {
		return
	}
	if len(sh.policies) >= policyCacheLimit {
		for k := range sh.policies {
			delete(sh.policies, k)
			break
		}
	}
	// The destination may be a substring of a large frame buffer; a copy
	// keeps the cache from pinning it.
	sh.policies[strings.Clone(dest)] = p
}
