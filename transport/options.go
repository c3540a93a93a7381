package transport

import "time"

// Defaults applied to zero-valued option fields.
const (
	// DefaultMaxQueuedBytes bounds the outbound queue of one connection.
	DefaultMaxQueuedBytes = 4 << 20
	// DefaultWriteTimeout is how long one write may stay blocked before the connection is torn down.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultMaxBatchBytes bounds one coalesced write.
	DefaultMaxBatchBytes = 64 << 10
	// DefaultReadLimit bounds one inbound WebSocket message: a 4 MiB STOMP body plus room for its headers.
	DefaultReadLimit = 4<<20 + 64<<10
)

// closeGrace bounds how long a graceful close waits for the peer's side of the shutdown: the WebSocket
// close frame in reply to ours, or the TCP peer's FIN. A well-behaved peer answers within a round trip;
// a peer that does not answer must not hold Close for the library's own 5 s.
const closeGrace = time.Second

// Options configures a Conn. The zero value takes the defaults. Options are read once, when the Conn is
// created; later changes to the struct have no effect.
type Options struct {
	// MaxQueuedBytes bounds the bytes queued and not yet written (heads plus tails). Enqueue returns
	// ErrSlowConsumer rather than exceed it, except into an empty queue. Zero or negative means
	// DefaultMaxQueuedBytes.
	MaxQueuedBytes int
	// WriteTimeout is how long one write call (one coalesced batch) may stay blocked on the network before
	// the connection is torn down; Read then reports an error wrapping ErrWriteTimeout. Zero or negative
	// means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxBatchBytes bounds one coalesced write. A single frame larger than this is still written whole,
	// and over WebSocket still as one message. Zero or negative means DefaultMaxBatchBytes.
	MaxBatchBytes int
}

func (o Options) withDefaults() Options {
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	return o
}

// WebSocketOptions configures AcceptWebSocket. The zero value takes the defaults: no subprotocol
// negotiated, same-host origins only, DefaultReadLimit.
type WebSocketOptions struct {
	Options
	// Subprotocols lists the subprotocols the server speaks, in its order of preference, for example
	// v12.stomp, v11.stomp, v10.stomp. The first entry that the client also offered is chosen. A client
	// that offers none of them is still accepted, with the empty subprotocol.
	Subprotocols []string
	// OriginPatterns lists path.Match patterns for browser origins allowed to connect from another host,
	// matched against the Origin host, or against scheme://host when the pattern contains "://". A request
	// from the same host, and a request without an Origin header (not from a browser), are always allowed.
	// Any other origin is answered 403 before the upgrade.
	OriginPatterns []string
	// ReadLimit bounds one inbound WebSocket message in bytes. A bigger message fails the connection with
	// close code 1009 and Read reports an error wrapping ErrMessageTooBig. Zero means DefaultReadLimit;
	// negative means no limit.
	ReadLimit int64
}
