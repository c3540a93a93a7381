package main

import (
	"io"
	"sync"

	"github.com/stompd/stompd/stompws/frame"
)

// errorTap watches the bytes the STOMP client reads for an ERROR frame and keeps the first one.
// go-stomp hands an ERROR only to a caller waiting on a receipt or a subscription and otherwise just
// closes the connection, which would leave a failed pub with "connection closed" instead of the
// broker's reason.
//
// Read is called by the client's one reader goroutine; brokerError may be called from any goroutine.
type errorTap struct {
	io.ReadWriteCloser
	parser  *frame.Parser
	scratch []byte // the parser unescapes in place, so it gets a copy of what the client reads

	mu  sync.Mutex
	err *brokerError
}

func newErrorTap(rwc io.ReadWriteCloser) *errorTap {
	return &errorTap{ReadWriteCloser: rwc, parser: frame.NewParser(frame.Limits{})}
}

// Read passes bytes through to the client and to the watching parser. A frame the parser rejects
// (over its limits, or malformed) ends the watching, never the reading.
func (t *errorTap) Read(p []byte) (int, error) {
	n, err := t.ReadWriteCloser.Read(p)
	if n > 0 && t.parser != nil {
		t.scratch = append(t.scratch[:0], p[:n]...)
		if perr := t.parser.Feed(t.scratch, t.observe); perr != nil {
			t.parser = nil
			t.scratch = nil
		}
	}
	return n, err
}

// observe follows the negotiated version, so that header escaping is read right, and records the
// first ERROR frame.
func (t *errorTap) observe(f *frame.Frame) error {
	if f == nil {
		return nil
	}
	switch f.Command {
	case frame.CONNECTED:
		v := frame.V10
		if s, ok := f.Get("version"); ok {
			if parsed, ok := frame.ParseVersion(string(s)); ok {
				v = parsed
			}
		}
		t.parser.SetVersion(v)
	case frame.ERROR:
		msg, _ := f.Get("message")
		t.mu.Lock()
		if t.err == nil {
			t.err = newBrokerError(string(msg), f.Body)
		}
		t.mu.Unlock()
	}
	return nil
}

// brokerError returns the first ERROR frame seen, or nil.
func (t *errorTap) brokerError() *brokerError {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}
