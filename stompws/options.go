package stompws

import (
	"log/slog"
	"time"

	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws/auth"
	"github.com/stompd/stompd/stompws/frame"
	"github.com/stompd/stompd/transport"
)

// Defaults for Options fields left at their zero value.
const (
	DefaultMaxSubscriptions = 1000
	DefaultMaxTransactions  = 100
	DefaultMaxTxFrames      = 1000
	// DefaultMaxTxBytes is the default Options.MaxTxBytes: 64 MiB, as a queue's default byte bound.
	DefaultMaxTxBytes = 64 << 20
	DefaultMaxUnacked = 10000
	// DefaultMaxDestinationsPerSession is the default Options.MaxDestinationsPerSession.
	DefaultMaxDestinationsPerSession = 1000
	// DefaultMemoryHoldTimeout is the default Options.MemoryHoldTimeout.
	DefaultMemoryHoldTimeout = 10 * time.Second
	DefaultMaxQueuedBytes    = 4 << 20
	DefaultWriteTimeout      = 10 * time.Second
	DefaultHeartBeatMin      = time.Second
	DefaultHeartBeatMax      = time.Minute
	DefaultHeartBeatGrace    = 2.0
	DefaultCloseTimeout      = 5 * time.Second
	DefaultConnectTimeout    = 10 * time.Second
	DefaultMaxConnections    = 100000
)

// Options configures a Server. The zero value is usable: every zero field takes the default named in
// its comment.
type Options struct {
	// Limits bounds inbound frames (size, header count, header line length); see frame.Limits for the
	// defaults. The WebSocket read limit follows Limits.MaxFrameBytes.
	Limits frame.Limits

	// MaxSubscriptions bounds the subscriptions one session may hold; default 1000.
	MaxSubscriptions int
	// MaxTransactions bounds the transactions one session may have open at once; default 100.
	MaxTransactions int
	// MaxTxFrames bounds the SEND, ACK and NACK frames one transaction may hold; default 1000.
	MaxTxFrames int
	// MaxTxBytes bounds the bytes (Message.Size: body, destination and headers) of the SENDs that one
	// session's open transactions hold until COMMIT; default 64 MiB. A SEND past it gets ERROR
	// "transaction too large".
	MaxTxBytes int

	// MaxQueuedBytes bounds each connection's outbound queue in bytes; default 4 MiB. A topic
	// subscriber whose connection is over it is handled by the destination's slow-consumer policy.
	MaxQueuedBytes int
	// WriteTimeout closes a connection whose write has been stuck this long; default 10s.
	WriteTimeout time.Duration

	// Heart-beats follow the client: the server beats at the interval the CONNECT frame asks to
	// receive, and expects beats at the interval it promises to send, each clamped by HeartBeatMin and
	// HeartBeatMax; a client that asks for none or promises none gets none in that direction.
	//
	// NoHeartBeatSend makes the server decline to send heart-beats, and NoHeartBeatReceive to check
	// the client's, whatever the client asks: CONNECTED then says 0 for that direction.
	NoHeartBeatSend, NoHeartBeatReceive bool
	// HeartBeatMin and HeartBeatMax clamp the negotiated intervals: the server never agrees to send or
	// expect heart-beats more often than HeartBeatMin (default 1s), and never stays silent longer than
	// HeartBeatMax (default 1m) when heart-beats are on.
	HeartBeatMin, HeartBeatMax time.Duration
	// HeartBeatGrace multiplies the negotiated inbound interval to get the silence after which a
	// client is closed with ERROR "heart-beat timeout"; default 2, at least 1.
	HeartBeatGrace float64

	// CloseTimeout bounds how long a connection closed for an error (or by Shutdown's notice) may take
	// to flush its ERROR frame; default 5s.
	CloseTimeout time.Duration

	// ConnectTimeout is how long a new connection has to send CONNECT (or STOMP) after the TCP accept or
	// the WebSocket upgrade; one that has not is sent ERROR "connect timeout" and closed. Default 10s;
	// negative disables it.
	ConnectTimeout time.Duration

	// MaxConnections bounds the connections ServeHTTP and ServeTCP serve at once; default 100000,
	// negative for no bound. Over it, a WebSocket upgrade gets HTTP 503 with Retry-After before the
	// upgrade, and a TCP connection gets ERROR "too many connections" and is closed at once.
	// Connections handed to ServeConn directly are not counted.
	MaxConnections int
	// MaxConnectionsPerIP bounds the connections served at once from one remote IP, answered as
	// MaxConnections is (ERROR "too many connections from this address" on TCP); default 0, no bound.
	// The IP is the socket's peer: behind a proxy every client shares the proxy's.
	MaxConnectionsPerIP int
	// AcceptRate bounds new connections per second across ServeHTTP and ServeTCP with a token bucket
	// of AcceptBurst tokens; default 0, off. Over it, a WebSocket upgrade gets HTTP 503 with a
	// Retry-After of the seconds until a token is due, and a TCP connection gets ERROR "connection rate
	// exceeded" and is closed at once.
	AcceptRate float64
	// AcceptBurst is the accept token bucket's size: how many connections may arrive at once after a
	// quiet spell; default one second's worth of AcceptRate, at least 1.
	AcceptBurst int
	// SendRate bounds the SEND frames per second of one session with a token bucket of SendBurst
	// tokens; default 0, off. A SEND over it is answered with ERROR "rate limit exceeded" (echoing its
	// receipt) and the connection is closed: a client that ignores the limit is not one to queue for.
	SendRate float64
	// SendBurst is the per-session SEND token bucket's size; default one second's worth of SendRate,
	// at least 1.
	SendBurst int
	// SendBytesRate bounds the body bytes per second one session may SEND, with a token bucket of
	// SendBytesBurst bytes; default 0, off. Over it, as over SendRate: ERROR "rate limit exceeded"
	// and close.
	SendBytesRate float64
	// SendBytesBurst is the per-session SEND bytes bucket's size; default one second's worth of
	// SendBytesRate, and never less than Limits.MaxFrameBytes, so that any frame the parser accepts can
	// pass after a quiet spell.
	SendBytesBurst int
	// MaxUnacked bounds the messages one session may hold unacknowledged, summed over its client and
	// client-individual subscriptions; default 10000, negative for no bound. A queue holds further
	// messages back until the client acknowledges some; a client-ack topic subscription over it is
	// handled by its destination's slow-consumer policy. A SUBSCRIBE's prefetch-count still bounds
	// each subscription within it.
	MaxUnacked int
	// MaxDestinationsPerSession bounds the destinations one session may create over its life: queues
	// and temporary reply queues, and topics that retain messages, each counted when the session's
	// SEND, SUBSCRIBE or reply-to creates it. One more is refused with ERROR "too many destinations
	// created by this connection (limit N)". The broker's own bound (broker.Options.MaxDestinations)
	// holds for all sessions together. Default 1000, negative for no bound.
	MaxDestinationsPerSession int

	// MaxMemory is the memory limit the process runs under, in bytes; 0 turns memory flow control off.
	// While the live heap is over 60% of it, SENDs are held back (the connection's reading waits, as
	// RabbitMQ blocks publishers) until it falls below 50%; consumers, ACKs and heart-beats of other
	// connections go on, so memory can drain. It does not set the runtime's limit: the caller does.
	MaxMemory int64
	// MemoryHoldTimeout bounds how long a SEND is held back: then it is refused with ERROR "memory limit
	// reached (max-memory N bytes)". Default 10s.
	MemoryHoldTimeout time.Duration
	// MemorySample reports the live heap in bytes for MaxMemory; nil reads the Go runtime's
	// (/gc/heap/live:bytes). Tests give their own.
	MemorySample func() uint64

	// Authenticator checks credentials at the WebSocket upgrade and in CONNECT. nil, or one with no
	// users file and no JWT key, turns authentication off: every client is anonymous and Policy is not
	// consulted.
	Authenticator *auth.Authenticator
	// Policy decides what authenticated users may publish and subscribe to; nil means
	// auth.DefaultRules. Only used when Authenticator is on.
	Policy *auth.Policy
	// HandshakeAuth says whether a WebSocket upgrade must carry credentials; default
	// HandshakeAuthOptional.
	HandshakeAuth HandshakeAuth
	// AuthFailureDelay is how long a CONNECT with refused credentials waits before its ERROR, to slow
	// down password guessing; default 1s, negative for none. It holds only that connection.
	AuthFailureDelay time.Duration

	// OriginPatterns lists the WebSocket Origin host patterns allowed besides the server's own host
	// (path.Match syntax, as coder/websocket's AcceptOptions.OriginPatterns). Requests without an Origin
	// header (non-browser clients) are always allowed.
	OriginPatterns []string

	// ServerName is sent in CONNECTED's server header; default "stompd".
	ServerName string

	// Logger receives connection lifecycle events (one line when a connection opens and one when it
	// closes, with its remote address, transport, session id, duration and close reason); default:
	// discard. Credentials are never logged.
	Logger *slog.Logger

	// Metrics records connections, frames, bytes, errors and delivery latency; nil turns them off.
	Metrics *metrics.Metrics
}

// withDefaults returns a copy of o with every zero field set to its default.
func (o Options) withDefaults() Options {
	o.Limits = o.Limits.WithDefaults()
	setDefault(&o.MaxSubscriptions, DefaultMaxSubscriptions)
	setDefault(&o.MaxTransactions, DefaultMaxTransactions)
	setDefault(&o.MaxTxFrames, DefaultMaxTxFrames)
	setDefault(&o.MaxTxBytes, DefaultMaxTxBytes)
	setDefault(&o.MaxUnacked, DefaultMaxUnacked)
	setDefault(&o.MaxDestinationsPerSession, DefaultMaxDestinationsPerSession)
	setDefault(&o.MemoryHoldTimeout, DefaultMemoryHoldTimeout)
	setDefault(&o.MaxQueuedBytes, DefaultMaxQueuedBytes)
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	setDefault(&o.HeartBeatMin, DefaultHeartBeatMin)
	setDefault(&o.HeartBeatMax, DefaultHeartBeatMax)
	setDefault(&o.CloseTimeout, DefaultCloseTimeout)
	setDefault(&o.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&o.AuthFailureDelay, DefaultAuthFailureDelay)
	if o.Policy == nil && o.Authenticator.Enabled() {
		o.Policy = defaultPolicy
	}
	setDefault(&o.MaxConnections, DefaultMaxConnections)
	if o.AcceptBurst <= 0 {
		o.AcceptBurst = burstFor(o.AcceptRate)
	}
	if o.SendBurst <= 0 {
		o.SendBurst = burstFor(o.SendRate)
	}
	if o.SendBytesBurst <= 0 {
		o.SendBytesBurst = max(burstFor(o.SendBytesRate), o.Limits.MaxFrameBytes)
	}
	if o.HeartBeatGrace < 1 {
		o.HeartBeatGrace = DefaultHeartBeatGrace
	}
	if o.ServerName == "" {
		o.ServerName = "stompd"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// transportOptions derives the per-connection transport options.
func (o *Options) transportOptions() transport.Options {
	return transport.Options{MaxQueuedBytes: o.MaxQueuedBytes, WriteTimeout: o.WriteTimeout}
}

// defaultPolicy is auth.DefaultRules as a Policy, used when authentication is on and no rules are given.
var defaultPolicy = func() *auth.Policy {
	p, err := auth.NewPolicy(auth.DefaultRules())
	if err != nil {
		panic("stompws: default authorization rules: " + err.Error())
	}
	return p
}()
