package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// The library's contexts arm a context.AfterFunc per frame read and per write, which allocates; reads
// and writes here use a context that is never done, and are interrupted by closing the network
// connection instead (watchdog, Close, Abort).
var neverDone = context.Background()

// wsConn is a Conn over a WebSocket connection.
type wsConn struct {
	outbound
	ws         *websocket.Conn
	raw        net.Conn // the hijacked network connection beneath ws
	remoteAddr string

	msg io.Reader // the inbound message being read; Read goroutine only
}

// AcceptWebSocket upgrades r to a WebSocket connection. On failure the HTTP response has been written
// (426 or 400 for a request that is not a valid upgrade, 403 for an origin that is not allowed, 501 when
// w cannot be hijacked) and a *HandshakeError carrying that status is returned. Compression is never negotiated. r.Context() must
// not be used after a successful upgrade: the connection has been hijacked from the HTTP server.
func AcceptWebSocket(w http.ResponseWriter, r *http.Request, opts WebSocketOptions) (Conn, error) {
	accept := &websocket.AcceptOptions{
		Subprotocols:   opts.Subprotocols,
		OriginPatterns: opts.OriginPatterns,
	}
	rec := &hijackRecorder{ResponseWriter: w}
	var upgrade http.ResponseWriter = rec
	if !canHijack(w) {
		upgrade = w // the library answers 501 itself
	}
	ws, err := websocket.Accept(upgrade, r, accept)
	if err != nil {
		status := rec.status
		if status == 0 {
			status = http.StatusNotImplemented // answered by the library on the unwrapped writer
		}
		return nil, &HandshakeError{Status: status, Err: err}
	}
	if rec.conn == nil {
		ws.CloseNow()
		return nil, errors.New("transport: websocket upgrade without a hijacked connection")
	}
	switch {
	case opts.ReadLimit == 0:
		ws.SetReadLimit(DefaultReadLimit)
	case opts.ReadLimit < 0:
		ws.SetReadLimit(-1)
	default:
		ws.SetReadLimit(opts.ReadLimit)
	}
	c := &wsConn{ws: ws, raw: rec.conn, remoteAddr: r.RemoteAddr}
	c.outbound.init(opts.Options, c)
	return c, nil
}

// Read implements Conn.Read.
func (c *wsConn) Read(p []byte) (int, error) {
	if c.localClose.Load() {
		return 0, ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.msg == nil {
			_, r, err := c.ws.Reader(neverDone)
			if err != nil {
				return 0, c.readFailure(wsReadError(err))
			}
			c.msg = r
		}
		n, err := c.msg.Read(p)
		if err == io.EOF {
			c.msg = nil
			err = nil
		}
		if err != nil {
			return n, c.readFailure(wsReadError(err))
		}
		if n > 0 {
			return n, nil
		}
	}
}

// wsReadError maps the library's read errors onto Conn.Read's: io.EOF only for a clean close by the
// peer, never for a connection that simply ended.
func wsReadError(err error) error {
	switch websocket.CloseStatus(err) {
	case -1:
	case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
		return io.EOF
	default:
		return fmt.Errorf("transport: websocket closed by peer: %w", err)
	}
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		return fmt.Errorf("%w: %w", ErrMessageTooBig, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("transport: websocket ended without a close frame: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("transport: websocket read: %w", err)
}

// Close implements Conn.Close.
func (c *wsConn) Close(ctx context.Context, code CloseCode, reason string) error {
	return c.outbound.close(ctx, code, reason)
}

// Abort implements Conn.Abort.
func (c *wsConn) Abort() { c.outbound.abort() }

// Transport implements Conn.Transport.
func (c *wsConn) Transport() string { return "ws" }

// Subprotocol implements Conn.Subprotocol.
func (c *wsConn) Subprotocol() string { return c.ws.Subprotocol() }

// RemoteAddr implements Conn.RemoteAddr.
func (c *wsConn) RemoteAddr() string { return c.remoteAddr }

// writeBatch sends consecutive frames of the same message type as one WebSocket message, up to
// maxBatch bytes; STOMP peers parse any number of frames per message.
func (c *wsConn) writeBatch(b *frameBatch) error {
	frames := b.frames
	for i := 0; i < len(frames); {
		first := &frames[i]
		total := first.size()
		j := i + 1
		for j < len(frames) && frames[j].binary == first.binary && total+frames[j].size() <= c.maxBatch {
			total += frames[j].size()
			j++
		}
		typ := websocket.MessageText
		if first.binary {
			typ = websocket.MessageBinary
		}
		var err error
		if j == i+1 {
			err = c.writeFrame(b, first, typ)
		} else {
			s := c.scratch()
			s.buf = appendFrames(s.buf[:0], b, i, j)
			err = c.writeMessage(typ, s.buf)
		}
		if err != nil {
			return err
		}
		i = j
	}
	return nil
}

// writeFrame sends one frame as one message, copying only when both parts are present and fit a batch.
func (c *wsConn) writeFrame(b *frameBatch, f *queuedFrame, typ websocket.MessageType) error {
	head := b.head(f)
	switch {
	case len(f.tail) == 0:
		return c.writeMessage(typ, head)
	case len(head) == 0:
		return c.writeMessage(typ, f.tail)
	case f.size() <= c.maxBatch:
		s := c.scratch()
		s.buf = append(append(s.buf[:0], head...), f.tail...)
		return c.writeMessage(typ, s.buf)
	}
	// Too big to coalesce: stream head and tail as fragments of one message rather than copy the tail.
	c.beginWrite()
	err := c.streamMessage(typ, head, f.tail)
	n := 0
	if err == nil {
		n = len(head) + len(f.tail)
	}
	c.endWrite(n)
	return err
}

func (c *wsConn) streamMessage(typ websocket.MessageType, parts ...[]byte) error {
	w, err := c.ws.Writer(neverDone, typ)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if _, err = w.Write(p); err != nil {
			break
		}
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

func (c *wsConn) writeMessage(typ websocket.MessageType, p []byte) error {
	c.beginWrite()
	err := c.ws.Write(neverDone, typ, p)
	n := 0
	if err == nil {
		n = len(p)
	}
	c.endWrite(n)
	return err
}

// closeGracefully runs the library's close handshake, which writes the close frame and then waits for
// the peer's, reading and discarding data meanwhile (or letting a Read in progress on another goroutine
// receive it). The library waits up to 5 s for the peer; closing the network connection after
// closeGrace, or when ctx ends, cuts that short.
func (c *wsConn) closeGracefully(ctx context.Context, code CloseCode, reason string) {
	if !code.sendable() {
		code = CloseInternalError
	}
	reason = truncateReason(reason)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.ws.Close(websocket.StatusCode(code), reason)
	}()
	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
	case <-ctx.Done():
	}
	c.kill()
	<-done
}

func (c *wsConn) kill() { _ = c.raw.Close() }

// release lets the library finish closing; once the network connection is closed this returns
// promptly, also when a close handshake is still unwinding.
func (c *wsConn) release() { _ = c.ws.CloseNow() }
