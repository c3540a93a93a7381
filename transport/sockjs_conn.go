package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// sockjsConn is one SockJS session seen as a Conn. Inbound, the messages that xhr_send requests (or the
// session's WebSocket) deliver are queued, bounded by the read limit, and read as one byte stream. Outbound,
// frames are encoded as JSON strings at Enqueue and queued, bounded by Options.MaxQueuedBytes, until a
// receiving request (xhr polling, xhr_streaming, eventsource or the WebSocket) is attached to write
// them. At most one receiving request is attached at a time; while none is, the session waits
// DisconnectDelay for the next before it counts the client as gone.
//
// Locking: mu guards every field below it and is a leaf. Every change a waiter may care about closes
// and replaces changed, so that any number of goroutines (the reader, xhr_send requests waiting for
// room, the receiving request, Close) can wait for it together with their own deadline.
type sockjsConn struct {
	id              string
	remoteAddr      string
	clientIP        string // the address that opened the session; requests from others are refused
	maxQueued       int
	maxBatch        int
	readLimit       int
	writeTimeout    time.Duration
	heartbeat       time.Duration
	disconnectDelay time.Duration
	forget          func() // removes the session from its handler's table; called once, after it ended

	written   atomic.Uint64
	lastWrite atomic.Int64 // unix nanoseconds, 0 before the first write

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change; see notifyLocked

	// Inbound.
	in      [][]byte // messages received and not yet read; in[0][inHead:] is next
	inHead  int
	inBytes int   // unread bytes in in
	inErr   error // what Read returns once in is empty: the peer's end, or why inbound failed

	// Outbound.
	out       [][]byte // encoded messages (JSON string literals) waiting for a receiver
	queued    int      // bytes of out plus those of the batch being written
	onDrain   func()
	receiver  bool        // a receiving request is attached
	detach    *time.Timer // runs while no receiver is attached; on firing, the client is gone
	opened    bool        // the open frame has been written
	gone      bool        // the client is gone (no receiver for DisconnectDelay, a failed write, WebSocket closed)
	writeErr  error       // the failed write that made the client gone, if that is what did
	closing   bool        // Close or Abort has started: Enqueue refuses
	aborted   bool
	closeMsg  []byte // the close frame, once Close has started; also answered to requests after the end
	closeSent bool   // the close frame has been written to a receiver
	ended     bool   // over: Close or Abort finished; requests are answered closeMsg
	closeDone chan struct{}
	closeErr  error
}

// errSockJSClientGone is what Close reports when the client went away before the close frame could be
// written to it.
var errSockJSClientGone = errors.New("transport: sockjs client gone before the close frame")

func newSockJSConn(id, remoteAddr string, opts *SockJSOptions, forget func()) *sockjsConn {
	c := &sockjsConn{
		id:              id,
		remoteAddr:      remoteAddr,
		clientIP:        hostOf(remoteAddr),
		maxQueued:       opts.MaxQueuedBytes,
		maxBatch:        opts.MaxBatchBytes,
		readLimit:       int(opts.ReadLimit),
		writeTimeout:    opts.WriteTimeout,
		heartbeat:       opts.Heartbeat,
		disconnectDelay: opts.DisconnectDelay,
		forget:          forget,
		changed:         make(chan struct{}),
	}
	return c
}

// notifyLocked wakes every goroutine waiting for a change.
func (c *sockjsConn) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Read implements Conn.Read: the messages received, concatenated.
func (c *sockjsConn) Read(p []byte) (int, error) {
	n := 0
	_, err := c.readChunk(func(b []byte) { n = copy(p, b) }, len(p))
	return n, err
}

// ReadPooled's fast path (pooledReader): f gets the received bytes in place, at most readBufferSize.
func (c *sockjsConn) readPooled(f func(p []byte)) (int, error) {
	return c.readChunk(f, readBufferSize)
}

// readChunk waits for inbound bytes and hands f at most max of them, without copying.
func (c *sockjsConn) readChunk(f func(p []byte), max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	c.mu.Lock()
	for {
		if c.closing {
			c.mu.Unlock()
			return 0, ErrClosed
		}
		if c.inBytes > 0 {
			break
		}
		if c.inErr != nil {
			err := c.inErr
			c.mu.Unlock()
			return 0, err
		}
		ch := c.changed
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
	msg := c.in[0][c.inHead:]
	if len(msg) > max {
		msg = msg[:max]
	}
	c.mu.Unlock()
	// Only the reader removes from in, and appends leave in[0] as it is: msg stays valid unlocked.
	f(msg)
	c.mu.Lock()
	c.inHead += len(msg)
	c.inBytes -= len(msg)
	if c.inHead == len(c.in[0]) {
		c.in[0] = nil
		c.in = c.in[1:]
		c.inHead = 0
		if len(c.in) == 0 {
			c.in = nil
		}
	}
	c.notifyLocked()
	c.mu.Unlock()
	return len(msg), nil
}

// push queues inbound messages for the reader, waiting while they would take the unread bytes past the
// read limit (a message is always accepted when nothing is unread). It returns an error when ctx ends
// first or the session is over.
func (c *sockjsConn) push(ctx context.Context, msgs [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		if len(m) == 0 {
			continue
		}
		for c.inBytes > 0 && c.inBytes+len(m) > c.readLimit {
			if c.closing || c.gone || c.inErr != nil {
				return ErrClosed
			}
			ch := c.changed
			c.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				c.mu.Lock()
				return ctx.Err()
			}
			c.mu.Lock()
		}
		if c.closing || c.gone || c.inErr != nil {
			return ErrClosed
		}
		c.in = append(c.in, m)
		c.inBytes += len(m)
		c.notifyLocked()
	}
	return nil
}

// failInbound ends the inbound stream with err (after what was already received), as a message over
// the read limit does.
func (c *sockjsConn) failInbound(err error) {
	c.mu.Lock()
	if c.inErr == nil {
		c.inErr = err
	}
	c.notifyLocked()
	c.mu.Unlock()
}

// Enqueue implements Conn.Enqueue. The frame is encoded as a JSON string at once; a frame that is not
// UTF-8 text is refused with ErrNotText, since a SockJS message cannot carry it unaltered (binary is
// otherwise ignored). The bound counts encoded bytes.
func (c *sockjsConn) Enqueue(head, tail []byte, _ bool) error {
	n := len(head) + len(tail)
	if n == 0 {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closing || c.gone {
			return ErrClosed
		}
		return nil
	}
	msg, err := encodeSockJSMessage(head, tail)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.gone {
		return ErrClosed
	}
	if c.queued > 0 && c.queued+len(msg) > c.maxQueued {
		return ErrSlowConsumer
	}
	c.out = append(c.out, msg)
	c.queued += len(msg)
	c.notifyLocked()
	return nil
}

// encodeSockJSMessage encodes head followed by tail as one JSON string literal.
func encodeSockJSMessage(head, tail []byte) ([]byte, error) {
	n := len(head) + len(tail)
	b := make([]byte, 0, n+n/16+8)
	b = append(b, '"')
	var err error
	if len(head) > 0 && !utf8.Valid(head) {
		// A character may straddle head and tail; encode them as one.
		b, err = appendJSONText(b, append(head[:len(head):len(head)], tail...))
	} else {
		b, err = appendJSONText(b, head)
		if err == nil {
			b, err = appendJSONText(b, tail)
		}
	}
	if err != nil {
		return nil, ErrNotText
	}
	return append(b, '"'), nil
}

// SetOnDrain implements Conn.SetOnDrain.
func (c *sockjsConn) SetOnDrain(f func()) {
	c.mu.Lock()
	c.onDrain = f
	c.mu.Unlock()
}

// Queued implements Conn.Queued.
func (c *sockjsConn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// Written implements Conn.Written.
func (c *sockjsConn) Written() uint64 { return c.written.Load() }

// LastWrite implements Conn.LastWrite.
func (c *sockjsConn) LastWrite() time.Time {
	ns := c.lastWrite.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Transport implements Conn.Transport.
func (c *sockjsConn) Transport() string { return "sockjs" }

// Subprotocol implements Conn.Subprotocol: SockJS negotiates none.
func (c *sockjsConn) Subprotocol() string { return "" }

// RemoteAddr implements Conn.RemoteAddr: the address of the request that opened the session.
func (c *sockjsConn) RemoteAddr() string { return c.remoteAddr }

// Close implements Conn.Close. The queued frames and then the close frame c[code,"reason"] are written
// by the receiving request attached, or by the next one to arrive; Close waits for that, bounded by ctx
// and by the client being gone (no receiver for DisconnectDelay). Later requests for the session are
// answered the same close frame until the handler forgets it, DisconnectDelay after the end.
func (c *sockjsConn) Close(ctx context.Context, code CloseCode, reason string) error {
	c.mu.Lock()
	if c.closeDone != nil {
		done := c.closeDone
		c.mu.Unlock()
		<-done
		return c.closeErr
	}
	c.closeDone = make(chan struct{})
	c.closing = true
	if !code.sendable() {
		code = CloseInternalError
	}
	c.closeMsg = appendSockJSClose(nil, code, truncateReason(reason))
	c.notifyLocked()
	var err error
	for !c.closeSent && !c.gone && !c.aborted {
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		}
		c.mu.Lock()
		if err != nil {
			break
		}
	}
	switch {
	case c.aborted:
		err = ErrClosed
	case c.closeSent:
		err = nil
	case err == nil && c.writeErr != nil:
		err = c.writeErr
	case err == nil:
		err = errSockJSClientGone
	}
	c.endLocked(err)
	c.mu.Unlock()
	return err
}

// Abort implements Conn.Abort: queued frames are discarded and an attached receiver ends its response.
func (c *sockjsConn) Abort() {
	c.mu.Lock()
	c.aborted = true
	c.closing = true
	c.out = nil
	c.queued = 0
	if c.closeMsg == nil {
		c.closeMsg = appendSockJSClose(nil, CloseGoingAway, "connection aborted")
	}
	c.notifyLocked()
	if c.closeDone != nil {
		done := c.closeDone
		c.mu.Unlock()
		<-done
		return
	}
	c.closeDone = make(chan struct{})
	c.endLocked(ErrClosed)
	c.mu.Unlock()
}

// endLocked marks the session over after Close or Abort, and has the handler forget it DisconnectDelay
// later, so that a client polling meanwhile learns how it ended.
func (c *sockjsConn) endLocked(err error) {
	c.ended = true
	c.closeErr = err
	c.out = nil
	c.queued = 0
	if c.detach != nil {
		c.detach.Stop()
		c.detach = nil
	}
	close(c.closeDone)
	c.notifyLocked()
	time.AfterFunc(c.disconnectDelay, c.forget)
}

// clientGoneLocked records that the client has gone: no receiving request came within DisconnectDelay,
// a write to one failed (err), or its WebSocket closed. The reader sees io.EOF (or what failed).
func (c *sockjsConn) clientGoneLocked(err error) {
	if c.gone {
		return
	}
	c.gone = true
	c.writeErr = err
	if c.inErr == nil {
		if err != nil {
			c.inErr = err
		} else {
			c.inErr = io.EOF
		}
	}
	c.notifyLocked()
}

// attach makes a receiving request the session's receiver. It reports false, with the frame to answer
// instead, when another receiver is attached or the session is over.
func (c *sockjsConn) attach() (ok bool, answer []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.ended || c.gone || c.aborted:
		if c.closeMsg != nil {
			return false, c.closeMsg
		}
		return false, appendSockJSClose(nil, 3000, "Go away!")
	case c.receiver:
		return false, appendSockJSClose(nil, 2010, "Another connection still open")
	}
	c.receiver = true
	if c.detach != nil {
		c.detach.Stop()
		c.detach = nil
	}
	return true, nil
}

// detachReceiver lets go of the receiving request; unless the session is over, the next must come
// within DisconnectDelay.
func (c *sockjsConn) detachReceiver() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.receiver = false
	if c.ended || c.gone {
		return
	}
	if c.detach != nil {
		c.detach.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(c.disconnectDelay, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.detach == t && !c.receiver {
			c.detach = nil
			c.clientGoneLocked(nil)
		}
	})
	c.detach = t
}

// sockjsWriter writes SockJS frames with a receiving transport's framing.
type sockjsWriter interface {
	// writeFrame writes one frame and flushes it to the network, within deadline.
	writeFrame(frame []byte, deadline time.Time) error
}

// receive serves one receiving request: it attaches as the receiver and writes the open frame, messages,
// heartbeats and the close frame as they come due. A polling request (streamLimit 0) returns after
// writing one frame; a streaming one after writing streamLimit bytes (or more), after the close frame,
// or when ctx ends (the client went away).
func (c *sockjsConn) receive(ctx context.Context, w sockjsWriter, streamLimit int) {
	ok, answer := c.attach()
	if !ok {
		_ = w.writeFrame(answer, time.Now().Add(c.writeTimeout))
		return
	}
	defer c.detachReceiver()
	sent := 0
	lastFrame := time.Now()
	write := func(frame []byte) bool {
		if err := w.writeFrame(frame, time.Now().Add(c.writeTimeout)); err != nil {
			c.mu.Lock()
			c.clientGoneLocked(fmt.Errorf("transport: sockjs receiver: %w", err))
			c.mu.Unlock()
			return false
		}
		lastFrame = time.Now()
		c.written.Add(uint64(len(frame)))
		c.lastWrite.Store(lastFrame.UnixNano())
		sent += len(frame)
		return streamLimit > 0 && sent < streamLimit
	}

	c.mu.Lock()
	if !c.opened {
		c.opened = true
		c.mu.Unlock()
		if !write(sockjsOpenFrame) {
			return
		}
		c.mu.Lock()
	}
	var heartbeat *time.Timer
	defer func() {
		if heartbeat != nil {
			heartbeat.Stop()
		}
	}()
	for {
		switch {
		case c.aborted || c.gone || c.ended:
			c.mu.Unlock()
			return
		case len(c.out) > 0:
			room := c.maxBatch
			if streamLimit > 0 {
				room = min(room, streamLimit-sent)
			}
			batch, msgs := c.takeBatchLocked(room)
			c.mu.Unlock()
			more := write(batch)
			c.mu.Lock()
			c.queued -= msgs
			var drain func()
			if c.queued == 0 && !c.closing {
				drain = c.onDrain
			}
			c.notifyLocked()
			c.mu.Unlock()
			if drain != nil {
				drain()
			}
			if !more {
				return
			}
			c.mu.Lock()
			continue
		case c.closeMsg != nil && !c.closeSent:
			msg := c.closeMsg
			c.mu.Unlock()
			write(msg)
			c.mu.Lock()
			c.closeSent = true
			c.notifyLocked()
			c.mu.Unlock()
			return
		}
		ch := c.changed
		c.mu.Unlock()
		// A heartbeat is due when nothing has been written for the heartbeat interval.
		if heartbeat == nil {
			heartbeat = time.NewTimer(time.Until(lastFrame.Add(c.heartbeat)))
		} else {
			heartbeat.Reset(time.Until(lastFrame.Add(c.heartbeat)))
		}
		select {
		case <-ch:
		case <-heartbeat.C:
			if !write(sockjsHeartbeatFrame) {
				return
			}
		case <-ctx.Done():
			return
		}
		c.mu.Lock()
	}
}

// takeBatchLocked removes queued messages, at least one and otherwise at most room bytes' worth, and
// returns them as one a[...] frame together with their queued size.
func (c *sockjsConn) takeBatchLocked(room int) ([]byte, int) {
	size, n := 0, 0
	for n < len(c.out) && (n == 0 || size+len(c.out[n]) <= room) {
		size += len(c.out[n])
		n++
	}
	frame := make([]byte, 0, size+n+2)
	frame = append(frame, 'a', '[')
	for i, m := range c.out[:n] {
		if i > 0 {
			frame = append(frame, ',')
		}
		frame = append(frame, m...)
		c.out[i] = nil
	}
	frame = append(frame, ']')
	c.out = c.out[n:]
	if len(c.out) == 0 {
		c.out = nil
	}
	return frame, size
}
