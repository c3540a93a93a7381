package transport

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrSlowConsumer is returned by Conn.Enqueue when queuing the frame would push the bytes waiting to be
// written past Options.MaxQueuedBytes. The frame was not queued. The peer is not reading as fast as frames
// are produced; the caller decides whether to drop, conflate or disconnect.
var ErrSlowConsumer = errors.New("transport: slow consumer: outbound queue full")

// ErrClosed is returned by Conn.Enqueue once Close or Abort has been called or the connection has failed,
// by Conn.Read after the connection was closed locally, and by Conn.Close when Abort came first and
// queued frames were discarded.
var ErrClosed = errors.New("transport: connection closed")

// ErrWriteTimeout is wrapped by the error that Conn.Read and Conn.Close report when one write stayed
// blocked longer than Options.WriteTimeout and the connection was therefore torn down.
var ErrWriteTimeout = errors.New("transport: write timed out")

// ErrMessageTooBig is wrapped by the error that Conn.Read reports when an inbound WebSocket message
// exceeded WebSocketOptions.ReadLimit. The peer has been sent close code 1009.
var ErrMessageTooBig = errors.New("transport: inbound message too big")

// ErrNotText is returned by Conn.Enqueue on a connection that carries text only (SockJS) when the frame
// is not valid UTF-8. The frame was not queued and the connection is unaffected.
var ErrNotText = errors.New("transport: frame is not UTF-8 text, and this transport carries text only")

// errCloseSent stops the writer of a WebSocket connection on which the library has sent a close frame
// (answering the peer's, or failing the connection on a protocol error): RFC 6455 allows no data frame
// after it, and the connection is going away.
var errCloseSent = errors.New("transport: websocket close frame already sent")

// HandshakeError is returned by AcceptWebSocket when it refused the upgrade; the response with Status
// has been written.
type HandshakeError struct {
	Status int   // HTTP status answered: 403 for a disallowed Origin, 426 or 400 for a bad upgrade request
	Err    error // what the WebSocket library reported
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("transport: websocket handshake refused with %d %s: %v", e.Status, http.StatusText(e.Status), e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }
