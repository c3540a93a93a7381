package transport

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
)

// Sizes of the buffers the WebSocket library gets with the hijacked connection. Its reader only sees
// frame headers and the odd short read: payloads of this size or more bypass it, and the socketReader
// beneath it borrows a pooled buffer while bytes are waiting. Its writer only carries the control
// frames the library writes on its own (pong, close), because data messages are written by the writer
// goroutine directly; it holds the largest control frame, a 2-byte header and 125 bytes of payload, so
// that every control frame reaches the network in one write and never inside a data message.
const (
	libraryReadBuffer  = 16
	libraryWriteBuffer = 2 + 125
)

// hijackRecorder passes the WebSocket library the caller's ResponseWriter, keeps the network
// connection it hijacks, and hands the library small buffers of its own in place of net/http's.
//
// Owning the network connection is what makes Close and Abort bounded: closing it unblocks the
// library's close handshake, which otherwise waits up to 5 s for the peer and cannot be interrupted
// through the library's own API once it has started.
//
// net/http's buffers are 4 KiB each and stay referenced from its connection state for as long as the
// handler runs, which for a WebSocket is the connection's whole life. After the hijack they are the
// caller's (net/http never touches them again), so they are emptied, which frees their memory, once
// the bytes net/http had read ahead have been kept.
type hijackRecorder struct {
	http.ResponseWriter
	conn   net.Conn
	in     *socketReader // what the library's reader reads from
	wire   *wsWire       // what the library's writer writes to
	br     *bufio.Reader // the library's reader, pointed back at in once the library has wrapped it
	status int           // the status the library answered a refused handshake with
}

func (h *hijackRecorder) WriteHeader(status int) {
	h.status = status
	h.ResponseWriter.WriteHeader(status)
}

// Hijack is called by the WebSocket library, with net/http's deepest stack of the connection's life
// still to come below it (the response header is written in there); its own frame is kept small so
// that the connection's goroutine does not need a larger stack for the rest of its life.
func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return h.adopt(c, brw)
}

// adopt takes over the hijacked connection: it keeps what net/http had read ahead, frees net/http's
// buffers, and gives the library small ones of its own.
func (h *hijackRecorder) adopt(c net.Conn, brw *bufio.ReadWriter) (net.Conn, *bufio.ReadWriter, error) {
	if err := brw.Writer.Flush(); err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		early = bytes.Clone(b)
	}
	*brw.Reader = bufio.Reader{}
	*brw.Writer = bufio.Writer{}

	h.conn = c
	h.in = newSocketReader(c, early)
	h.wire = &wsWire{conn: c}
	h.br = bufio.NewReaderSize(h.in, libraryReadBuffer)
	return c, bufio.NewReadWriter(h.br, bufio.NewWriterSize(h.wire, libraryWriteBuffer)), nil
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (h *hijackRecorder) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// canHijack reports whether w, or a writer it wraps, can be hijacked, following Unwrap the way
// http.ResponseController does. Only such writers are wrapped, so that the WebSocket library still
// answers 501 itself for the others.
func canHijack(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case http.Hijacker:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}
