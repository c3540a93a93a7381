package transport

import (
	"context"
	"time"
	"unicode/utf8"
)

// Conn is one client connection seen as an inbound byte stream plus a bounded, non-blocking outbound
// frame queue. Reads (Read, ReadPooled, ServeReads) must not run concurrently: one reader at a time,
// which may move from goroutine to goroutine as ServeReads does; every other method is safe for
// concurrent use.
type Conn interface {
	// Read reads inbound bytes like io.Reader. For WebSocket, the payloads of successive messages (text or
	// binary, both accepted) are concatenated: message boundaries are not preserved. Read returns io.EOF
	// when the peer closed cleanly (WebSocket close code 1000, 1001 or none; TCP FIN) and another error
	// otherwise: ErrClosed once Close or Abort has started, an error wrapping ErrWriteTimeout when a
	// stuck write tore the connection down, one wrapping ErrMessageTooBig when a WebSocket message was
	// over the read limit. After Close or Abort it returns promptly.
	Read(p []byte) (int, error)
	// Enqueue queues one outbound frame made of head followed by tail and returns at once; it never
	// blocks on the network. head is copied; tail is retained until written and must never be modified
	// (it may be shared between connections). binary selects a WebSocket binary message (ignored by TCP).
	// If the queued bytes plus this frame would exceed Options.MaxQueuedBytes the frame is not queued and
	// ErrSlowConsumer is returned, except that a frame is always accepted into an empty queue, so one
	// frame larger than the limit cannot wedge a connection. After Close or Abort, or once a write has
	// failed, it returns ErrClosed. An empty frame is accepted and ignored.
	Enqueue(head, tail []byte, binary bool) error
	// SetOnDrain sets f to be called from the writer goroutine each time the queue has been written out
	// completely (it is empty at that moment), with no transport lock held; nil removes it. f must not
	// block and must not call Close or Abort (they wait for the writer, which is the caller); it may call
	// Enqueue. It is not called once Close or Abort has started. A session uses it to resume deliveries
	// it had to hold back while the queue was full.
	SetOnDrain(f func())
	// Queued reports the bytes queued and not yet handed to the operating system.
	Queued() int
	// Written reports the bytes handed to the operating system so far (frames only: control frames the
	// WebSocket library writes on its own, and WebSocket framing, are not counted).
	Written() uint64
	// LastWrite reports when bytes were last handed to the operating system (zero before the first
	// write). Control frames the WebSocket library writes on its own (pong, close) do not count.
	LastWrite() time.Time
	// Close stops accepting frames, writes everything already queued (waiting at most until ctx is done),
	// then closes. WebSocket sends a close frame with code and reason (reason truncated to 123 bytes at a
	// UTF-8 boundary) and waits at most one second for the peer's answer, reading and discarding what
	// the peer still sends. TCP half-closes after the flush, discards what the peer still sends for at
	// most one second so that unread input does not reset the connection under the frames just written,
	// then closes. Close returns nil when everything queued was written, ctx.Err() when ctx ended first
	// (the rest is discarded and the connection torn down), the write error when a write failed, and
	// ErrClosed when Abort came first. Safe to call more than once and concurrently: later calls wait for
	// the first to finish and return its result. When it returns, no goroutine owned by the Conn is
	// running and Read returns an error.
	Close(ctx context.Context, code CloseCode, reason string) error
	// Abort closes at once, discarding anything queued. Same guarantees as Close on return; if a Close
	// is in progress, Abort cuts it short and waits for it.
	Abort()
	// Transport names the kind: "ws" or "tcp".
	Transport() string
	// Subprotocol is the negotiated WebSocket subprotocol ("" if none, and always "" for TCP).
	Subprotocol() string
	// RemoteAddr is the peer's address as host:port.
	RemoteAddr() string
}

// CloseCode is a WebSocket close status code (RFC 6455 §7.4); TCP ignores it.
type CloseCode int

// Close codes the broker uses. Codes that may not be sent on the wire (outside 1000–1014 and 3000–4999,
// or 1004, 1005, 1006) are sent as 1011 internal error.
const (
	CloseNormal          CloseCode = 1000
	CloseGoingAway       CloseCode = 1001 // server shutting down
	CloseProtocolError   CloseCode = 1002
	ClosePolicyViolation CloseCode = 1008 // STOMP ERROR closes
	CloseMessageTooBig   CloseCode = 1009
	CloseInternalError   CloseCode = 1011
	CloseTryAgainLater   CloseCode = 1013 // slow consumer, overload
)

// maxCloseReason is the room left for the reason in a control frame after the two-byte code.
const maxCloseReason = 123

func (c CloseCode) sendable() bool {
	switch {
	case c == 1004 || c == 1005 || c == 1006:
		return false
	case c >= 1000 && c <= 1014, c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// truncateReason cuts reason to the close frame's room without splitting a UTF-8 sequence, because
// browsers fail the connection on a close reason that is not valid UTF-8.
func truncateReason(reason string) string {
	if len(reason) <= maxCloseReason {
		return reason
	}
	n := maxCloseReason
	for n > 0 && !utf8.RuneStart(reason[n]) {
		n--
	}
	return reason[:n]
}
