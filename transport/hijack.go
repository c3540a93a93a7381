package transport

import (
	"bufio"
	"net"
	"net/http"
)

// hijackRecorder passes the WebSocket library the caller's ResponseWriter and keeps the network
// connection it hijacks. Owning that connection is what makes Close and Abort bounded: closing it
// unblocks the library's close handshake, which otherwise waits up to 5 s for the peer and cannot be
// interrupted through the library's own API once it has started.
type hijackRecorder struct {
	http.ResponseWriter
	conn   net.Conn
	status int // the status the library answered a refused handshake with
}

func (h *hijackRecorder) WriteHeader(status int) {
	h.status = status
	h.ResponseWriter.WriteHeader(status)
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.conn = c
	}
	return c, brw, err
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
