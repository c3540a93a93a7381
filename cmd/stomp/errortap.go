package main

import (
	"bytes"
	"io"
	"sync"

	"github.com/stompd/stompd/stompws/frame"
)

// errorTap watches the bytes the STOMP client reads for an ERROR frame and keeps the first one.
// go-stomp hands an ERROR only to a caller waiting on a receipt or a subscription and otherwise just
// closes the connection, which would leave a failed pub with "connection closed" instead of the
// broker's reason.
//
// It also keeps go-stomp from waiting out a receipt timeout after a failure. go-stomp holds its
// connection lock while a Send or Disconnect waits for its RECEIPT, and its frame loop needs that
// lock to handle an ERROR; if the loop sees the ERROR (or the end of the stream, or a failed write)
// before it has taken the waiting frame from its queue, nobody ever answers the wait. So, between
// awaitWrite and settled, a failure the tap sees is held back from go-stomp until the awaited frame
// has been written, by which time go-stomp has registered its receipt and passes the failure to the
// waiter at once: reads that bring an ERROR or end the stream block, and a failed write of an earlier
// frame reports success, since the failure reaches the waiter through the awaited frame anyway.
//
// And it tells a broker that answers DISCONNECT by closing the connection normally, without the
// RECEIPT the DISCONNECT asked for (RabbitMQ's Web-STOMP does), from one that fails: see
// endedCleanlyOnDisconnect.
//
// Read is called by the client's one reader goroutine and Write by its one writer goroutine;
// the other methods may be called from any goroutine.
type errorTap struct {
	io.ReadWriteCloser
	parser  *frame.Parser
	scratch []byte // the parser unescapes in place, so it gets a copy of what the client reads

	mu        sync.Mutex
	released  sync.Cond // signalled when a held read may go on
	err       *brokerError
	streamErr error // the first read or write error of the underlying stream
	closed    bool
	blind     bool                      // the parser gave up on the stream, so an ERROR could pass unseen
	awaited   func(written []byte) bool // reports the awaited frame's bytes; nil when none is awaited
	written   bool                      // the awaited frame has been written

	disconnecting      bool // a DISCONNECT frame has been passed to the stream
	closedOnDisconnect bool // after it, the stream ended cleanly with nothing else gone wrong
}

// disconnectPrefix starts a DISCONNECT frame; go-stomp starts every frame at the start of a write.
var disconnectPrefix = []byte(frame.DISCONNECT + "\n")

func newErrorTap(rwc io.ReadWriteCloser) *errorTap {
	t := &errorTap{ReadWriteCloser: rwc, parser: frame.NewParser(frame.Limits{})}
	t.released.L = &t.mu
	return t
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
	t.mu.Lock()
	t.blind = t.parser == nil
	if err != nil && t.streamErr == nil {
		t.streamErr = err
		// io.EOF is a TCP peer's orderly close or a WebSocket close with status 1000 (see
		// wsStream); anything else is abnormal. A frame cut short, or an ERROR, is no clean end.
		t.closedOnDisconnect = err == io.EOF && t.disconnecting && t.err == nil &&
			!t.blind && t.parser.Buffered() == 0
	}
	for t.holding() {
		t.released.Wait()
	}
	t.mu.Unlock()
	return n, err
}

// Write passes p to the stream, noting when it carries the awaited frame. While a frame is awaited
// and not yet written, a write error is recorded and reported as success (see errorTap).
func (t *errorTap) Write(p []byte) (int, error) {
	t.mu.Lock()
	if bytes.HasPrefix(p, disconnectPrefix) {
		t.disconnecting = true
	}
	before := t.awaited != nil && !t.written
	if before && t.awaited(p) {
		t.written = true
		before = false
		t.released.Broadcast()
	}
	t.mu.Unlock()
	n, err := t.ReadWriteCloser.Write(p)
	if err != nil {
		t.mu.Lock()
		if t.streamErr == nil {
			t.streamErr = err
		}
		t.mu.Unlock()
		if before {
			return len(p), nil
		}
	}
	return n, err
}

// Close releases a held read and closes the stream.
func (t *errorTap) Close() error {
	t.mu.Lock()
	t.closed = true
	t.released.Broadcast()
	t.mu.Unlock()
	return t.ReadWriteCloser.Close()
}

// holding reports whether a read must wait: a failure has been seen while a frame whose receipt
// go-stomp will wait for is still unwritten. Called with t.mu held.
func (t *errorTap) holding() bool {
	return t.awaited != nil && !t.written && !t.closed && (t.err != nil || t.streamErr != nil)
}

// awaitWrite announces a frame the client is about to send and wait on; isFrame reports whether
// the bytes of one write carry it. It returns the failure already seen, if any, in which case the
// caller must not send, since go-stomp may have stopped answering. Every call that returns nil
// must be followed by settled.
func (t *errorTap) awaitWrite(isFrame func(written []byte) bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	if t.streamErr != nil {
		return connectionLost(t.streamErr)
	}
	t.awaited, t.written = isFrame, false
	return nil
}

// settled ends what awaitWrite started and releases a held read.
func (t *errorTap) settled() {
	t.mu.Lock()
	t.awaited = nil
	t.released.Broadcast()
	t.mu.Unlock()
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

// endedCleanlyOnDisconnect reports whether the broker closed the connection normally (a TCP
// orderly close or WebSocket status 1000, between frames) after a DISCONNECT had been written,
// before the stream failed in any other way and without an ERROR frame. Frames of one connection
// are handled in order, so such a broker had handled every earlier frame: the close answers the
// DISCONNECT as its RECEIPT would have. A tap that stopped watching (a frame over its parser's
// limits) cannot rule out an ERROR, and never reports a clean end.
func (t *errorTap) endedCleanlyOnDisconnect() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closedOnDisconnect
}

// streamEnd returns the first read or write error of the stream, or nil while it works.
func (t *errorTap) streamEnd() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.streamErr
}

// watching reports whether the tap still parses what the client reads, and so would have seen an
// ERROR frame.
func (t *errorTap) watching() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.blind
}

// brokerError returns the first ERROR frame seen, or nil.
func (t *errorTap) brokerError() *brokerError {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// carriesHeader returns a matcher for awaitWrite that finds the header line "name:value" in what
// the client writes. go-stomp flushes each frame on its own, so a frame's header block normally
// arrives in one write; the matcher keeps the tail of the previous write so that a line split
// across two writes is found too.
func carriesHeader(name, value string) func([]byte) bool {
	line := []byte("\n" + name + ":" + value + "\n")
	keep := len(line) - 1
	var tail []byte // the last keep bytes written so far
	return func(p []byte) bool {
		if bytes.Contains(p, line) {
			return true
		}
		seam := append(tail, p[:min(len(p), keep)]...)
		if bytes.Contains(seam, line) {
			return true
		}
		if len(p) >= keep {
			tail = append(tail[:0], p[len(p)-keep:]...)
		} else {
			tail = append(tail[:0], seam[max(0, len(seam)-keep):]...)
		}
		return false
	}
}

// startsFrame returns a matcher for awaitWrite that finds a frame of the given command: go-stomp
// starts every frame at the start of a write.
func startsFrame(command string) func([]byte) bool {
	prefix := []byte(command + "\n")
	return func(p []byte) bool { return bytes.HasPrefix(p, prefix) }
}
