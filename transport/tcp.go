package transport

import (
	"context"
	"net"
	"sync"
	"syscall"
	"time"
)

// tcpConn is a Conn over a stream connection: plain TCP, TLS, or anything else that is a net.Conn.
type tcpConn struct {
	outbound
	c          net.Conn
	vectored   bool          // c writes net.Buffers with one writev
	iov        net.Buffers   // the writev argument, consumed by each write; writer only
	in         *socketReader // ReadPooled's reader; nil when c does not expose its socket
	remoteAddr string

	readMu sync.Mutex // held while reading (Read, ReadPooled), and by Close while it discards the peer's last bytes
}

// NewTCPConn wraps an accepted TCP (or TLS, or other stream) connection; the Conn owns c from then on.
// Over *net.TCPConn and *net.UnixConn a batch is written with one writev over the queued heads and
// tails, without copying; other connections (TLS) get the frames copied into one buffer per batch, so
// that a batch makes one record rather than one per frame.
func NewTCPConn(c net.Conn, opts Options) Conn {
	t := &tcpConn{c: c}
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		t.vectored = true
	}
	if in := newSocketReader(c, nil); in.raw != nil {
		t.in = in
	}
	if a := c.RemoteAddr(); a != nil {
		t.remoteAddr = a.String()
	}
	t.outbound.init(opts, t)
	return t
}

// Read implements Conn.Read.
func (t *tcpConn) Read(p []byte) (int, error) {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	if t.localClose.Load() {
		return 0, ErrClosed
	}
	n, err := t.c.Read(p)
	if err != nil {
		err = t.readFailure(err)
	}
	return n, err
}

// readPooled implements ReadPooled.
func (t *tcpConn) readPooled(f func(p []byte)) (int, error) {
	if t.in == nil {
		return readBorrowing(t, f)
	}
	return t.readSocket(f, true)
}

// readPooledNoWait implements parkableConn.
func (t *tcpConn) readPooledNoWait(f func(p []byte)) (int, error) { return t.readSocket(f, false) }

// readSocket reads through t.in, waiting for bytes to arrive or, unless wait, returning errWouldBlock
// instead. The read lock is not held while f runs: f may close the connection, and Close takes the
// read side over to drain it.
func (t *tcpConn) readSocket(f func(p []byte), wait bool) (int, error) {
	t.readMu.Lock()
	if t.localClose.Load() {
		t.readMu.Unlock()
		return 0, ErrClosed
	}
	var p []byte
	var err error
	if wait {
		p, err = t.in.next()
	} else {
		p, err = t.in.tryNext()
	}
	t.readMu.Unlock()
	if err == errWouldBlock {
		return 0, err
	}
	if len(p) > 0 {
		f(p)
	}
	t.in.release()
	if err != nil {
		err = t.readFailure(err)
	}
	return len(p), err
}

// parkSocket implements parkableConn: nil when the connection is not a plain socket.
func (t *tcpConn) parkSocket() syscall.RawConn {
	if t.in == nil {
		return nil
	}
	return t.in.raw
}

// Close implements Conn.Close.
func (t *tcpConn) Close(ctx context.Context, code CloseCode, reason string) error {
	return t.outbound.close(ctx, code, reason)
}

// Abort implements Conn.Abort.
func (t *tcpConn) Abort() { t.outbound.abort() }

// Transport implements Conn.Transport.
func (t *tcpConn) Transport() string { return "tcp" }

// Subprotocol implements Conn.Subprotocol.
func (t *tcpConn) Subprotocol() string { return "" }

// RemoteAddr implements Conn.RemoteAddr.
func (t *tcpConn) RemoteAddr() string { return t.remoteAddr }

func (t *tcpConn) writeBatch(b *frameBatch) error {
	if t.vectored {
		return t.writeVectored(b)
	}
	return t.writeCopied(b)
}

// writeVectored writes up to maxBatch bytes per write call: a run of small frames copied behind each
// other (see copyRun), anything else as one writev, heads straight from the arena and tails from the
// caller's memory.
func (t *tcpConn) writeVectored(b *frameBatch) error {
	s := t.scratch()
	frames := b.frames
	for i := 0; i < len(frames); {
		total := frames[i].size()
		j := i + 1
		for j < len(frames) && total+frames[j].size() <= t.maxBatch {
			total += frames[j].size()
			j++
		}
		var n int
		var err error
		t.beginWrite()
		if copyRun(j-i, total) {
			s.buf = appendFrames(s.buf[:0], b, i, j)
			n, err = t.c.Write(s.buf)
		} else {
			s.iov = appendFrameIovecs(s.iov[:0], b, i, j)
			t.iov = s.iov
			var n64 int64
			n64, err = t.iov.WriteTo(t.c)
			n = int(n64)
		}
		t.endWrite(n)
		if err != nil {
			return err
		}
		i = j
	}
	return nil
}

// writeCopied coalesces up to maxBatch bytes into one Write. A frame bigger than that is written as
// head then tail, without copying.
func (t *tcpConn) writeCopied(b *frameBatch) error {
	frames := b.frames
	for i := 0; i < len(frames); {
		f := &frames[i]
		if f.size() > t.maxBatch {
			if err := t.writeRaw(b.head(f)); err != nil {
				return err
			}
			if err := t.writeRaw(f.tail); err != nil {
				return err
			}
			i++
			continue
		}
		total := f.size()
		j := i + 1
		for j < len(frames) && total+frames[j].size() <= t.maxBatch {
			total += frames[j].size()
			j++
		}
		s := t.scratch()
		s.buf = appendFrames(s.buf[:0], b, i, j)
		if err := t.writeRaw(s.buf); err != nil {
			return err
		}
		i = j
	}
	return nil
}

func (t *tcpConn) writeRaw(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	t.beginWrite()
	n, err := t.c.Write(p)
	t.endWrite(n)
	return err
}

// closeGracefully half-closes after the flush, then reads and discards until the peer closes too or
// closeGrace (or ctx's deadline) passes. Closing a socket with unread input makes the kernel send a
// reset, and a reset can destroy the frames just written before the peer reads them: a client that
// pipelined frames behind a bad one would lose the ERROR frame explaining why it was disconnected.
func (t *tcpConn) closeGracefully(ctx context.Context, _ CloseCode, _ string) {
	deadline := time.Now().Add(closeGrace)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if hc, ok := t.c.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		_ = t.c.SetReadDeadline(deadline)
		// A Read in progress returns by the deadline at the latest; the next one sees localClose.
		t.readMu.Lock()
		var discard [512]byte
		for {
			if _, err := t.c.Read(discard[:]); err != nil {
				break
			}
		}
		t.readMu.Unlock()
	}
	_ = t.c.Close()
}

func (t *tcpConn) kill() { _ = t.c.Close() }

func (t *tcpConn) release() {}
