package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// The library's contexts arm a context.AfterFunc per frame read, which allocates; reads here use a
// context that is never done, and are interrupted by closing the network connection instead (Close,
// Abort, the write watchdog).
var neverDone = context.Background()

// wsConn is a Conn over a WebSocket connection. The library reads frames, answers pings and runs the
// close handshake; data messages are written here, straight to the network connection, so that each
// goes out in one write call without passing through a buffer of the library's.
type wsConn struct {
	outbound
	ws         *websocket.Conn
	raw        net.Conn    // the hijacked network connection beneath ws
	wire       *wsWire     // serializes writes to raw between the writer and the library
	vectored   bool        // raw writes net.Buffers with one writev
	iov        net.Buffers // the writev argument, consumed by each write; writer only
	remoteAddr string
	in         *socketReader // what the library reads from; also touched by its close handshake

	msg    io.Reader   // the inbound message being read; Read goroutine only
	msgBuf *readBuffer // ReadPooled's buffer for msg, borrowed until msg ends; Read goroutine only

	peekFn    func(fd uintptr) // peek, bound once; Read goroutine only
	peekByte  [1]byte          // peek's landing place; Read goroutine only
	peekReady bool             // what the last peek found; Read goroutine only
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
	// The library wrapped its reader around the raw connection, to replay what was buffered (nothing:
	// what net/http had read ahead is in rec.in); point it back at the socketReader.
	rec.br.Reset(rec.in)
	c := &wsConn{ws: ws, raw: rec.conn, wire: rec.wire, remoteAddr: r.RemoteAddr, in: rec.in}
	switch rec.conn.(type) {
	case *net.TCPConn, *net.UnixConn:
		c.vectored = true
	}
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
			c.endMessage()
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

// readPooled implements ReadPooled. Waiting for the next message happens inside the library, whose
// reader reads from the socketReader: no buffer is held until a frame header has arrived. The buffer
// borrowed for a message is kept until the message has been read to its end, which takes one more
// call that returns nothing, so that a message costs one trip to the pool.
func (c *wsConn) readPooled(f func(p []byte)) (int, error) { return c.readMessages(f, true) }

// readPooledNoWait implements parkableConn. Between messages, with no byte held back from the
// library (see socketReader.Read) and none on the socket, it returns errWouldBlock instead of entering
// the library, whose reader would wait. It looks at the socket without reading from it: the library's
// close handshake may be reading the same stream from another goroutine.
func (c *wsConn) readPooledNoWait(f func(p []byte)) (int, error) { return c.readMessages(f, false) }

func (c *wsConn) readMessages(f func(p []byte), wait bool) (int, error) {
	if c.localClose.Load() {
		return 0, ErrClosed
	}
	for {
		if c.msg == nil {
			if !wait && !c.in.holding() && !c.socketReadable() {
				if c.localClose.Load() {
					return 0, ErrClosed
				}
				return 0, errWouldBlock
			}
			_, r, err := c.ws.Reader(neverDone)
			if err != nil {
				return 0, c.readFailure(wsReadError(err))
			}
			c.msg = r
		}
		if c.msgBuf == nil { // a new message, or one that Read began
			c.msgBuf = getReadBuffer()
		}
		n, err := c.msg.Read(c.msgBuf[:])
		if n > 0 {
			f(c.msgBuf[:n])
		}
		if err == io.EOF {
			c.endMessage()
			err = nil
		}
		if err != nil {
			c.endMessage()
			return n, c.readFailure(wsReadError(err))
		}
		if n > 0 {
			return n, nil
		}
	}
}

// parkSocket implements parkableConn.
func (c *wsConn) parkSocket() syscall.RawConn { return c.in.raw }

// socketReadable reports whether the socket has bytes to read, or an end or error to report, without
// consuming anything. A socket that cannot be looked at counts as readable: reading it reports why.
func (c *wsConn) socketReadable() bool {
	if c.peekFn == nil {
		c.peekFn = c.peek
	}
	if err := c.in.raw.Control(c.peekFn); err != nil {
		return true
	}
	return c.peekReady
}

func (c *wsConn) peek(fd uintptr) { c.peekReady = peekReadable(fd, c.peekByte[:]) }

// endMessage forgets the message being read and gives its buffer back.
func (c *wsConn) endMessage() {
	c.msg = nil
	if c.msgBuf != nil {
		putReadBuffer(c.msgBuf)
		c.msgBuf = nil
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
