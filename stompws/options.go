package stompws

import (
	"log/slog"
	"time"

	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws/frame"
	"github.com/stompd/stompd/transport"
)

// Defaults for Options fields left at their zero value.
const (
	DefaultMaxSubscriptions = 1000
	DefaultMaxTransactions  = 100
	DefaultMaxTxFrames      = 1000
	DefaultMaxQueuedBytes   = 4 << 20
	DefaultWriteTimeout     = 10 * time.Second
	DefaultHeartBeatSend    = 10 * time.Second
	DefaultHeartBeatReceive = 10 * time.Second
	DefaultHeartBeatMin     = time.Second
	DefaultHeartBeatMax     = time.Minute
	DefaultHeartBeatGrace   = 2.0
	DefaultCloseTimeout     = 5 * time.Second
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

	// MaxQueuedBytes bounds each connection's outbound queue in bytes; default 4 MiB. A topic
	// subscriber whose connection is over it is handled by the destination's slow-consumer policy.
	MaxQueuedBytes int
	// WriteTimeout closes a connection whose write has been stuck this long; default 10s.
	WriteTimeout time.Duration

	// HeartBeatSend is how often the server offers to send heart-beats (the sx of CONNECTED's
	// heart-beat header); default 10s. Negative disables server heart-beats.
	HeartBeatSend time.Duration
	// HeartBeatReceive is how often the server asks clients for heart-beats (sy); default 10s.
	// Negative disables the check of client heart-beats.
	HeartBeatReceive time.Duration
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
	setDefault(&o.MaxQueuedBytes, DefaultMaxQueuedBytes)
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	setDefault(&o.HeartBeatSend, DefaultHeartBeatSend)
	setDefault(&o.HeartBeatReceive, DefaultHeartBeatReceive)
	setDefault(&o.HeartBeatMin, DefaultHeartBeatMin)
	setDefault(&o.HeartBeatMax, DefaultHeartBeatMax)
	setDefault(&o.CloseTimeout, DefaultCloseTimeout)
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
