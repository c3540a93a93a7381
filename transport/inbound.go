package transport

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// readBufferSize is the size of the pooled read buffers: one socket read at most.
const readBufferSize = 4 << 10

type readBuffer [readBufferSize]byte

// readBufferPool holds the read buffers of all connections. A connection borrows one only while bytes
// it has read are waiting to be consumed, so idle connections hold none.
var readBufferPool = sync.Pool{New: func() any { return new(readBuffer) }}

func getReadBuffer() *readBuffer { return readBufferPool.Get().(*readBuffer) }

func putReadBuffer(b *readBuffer) { readBufferPool.Put(b) }

// pooledReader is implemented by the Conns of this package that can wait for inbound bytes without
// holding a buffer.
type pooledReader interface {
	readPooled(f func(p []byte)) (int, error)
}

// ReadPooled reads the inbound bytes that have arrived on c, as c.Read would, into a buffer borrowed
// from a pool shared by all connections, calls f with them, and returns the buffer to the pool: f must
// not retain p. It blocks until at least one byte has arrived or the connection has ended, calls f at
// most once and only with a non-empty p (at most 4 KiB), and returns the number of bytes passed to f
// together with Read's error, if any, which comes after those bytes.
//
// A WebSocket connection, and a TCP connection over *net.TCPConn or *net.UnixConn, holds no buffer
// while it waits here: it borrows one only once the socket is readable. A connection that is silent
// therefore costs no read memory. Any other Conn is read with c.Read into the borrowed buffer, held
// while Read blocks. Like Read, ReadPooled must be called from the goroutine that reads c.
func ReadPooled(c Conn, f func(p []byte)) (int, error) {
	if pr, ok := c.(pooledReader); ok {
		return pr.readPooled(f)
	}
	return readBorrowing(c, f)
}

// readBorrowing is ReadPooled for a reader that cannot wait without a buffer: the buffer is held
// while Read blocks.
func readBorrowing(r io.Reader, f func(p []byte)) (int, error) {
	buf := getReadBuffer()
	n, err := r.Read(buf[:])
	if n > 0 {
		f(buf[:n])
	}
	putReadBuffer(buf)
	return n, err
}

// socketReader reads a network connection through a buffer borrowed from readBufferPool only while
// it holds bytes not yet consumed. Where the connection exposes its socket (rawConn), it waits for the
// socket to become readable before borrowing, so while the peer is silent it holds no buffer; other
// connections are read directly into the caller's slice. Not safe for concurrent use.
type socketReader struct {
	conn  net.Conn
	raw   syscall.RawConn // nil when conn does not expose its socket
	early []byte          // bytes read from conn by someone else before the handover, consumed first

	buf  *readBuffer // borrowed while it holds unread bytes, nil otherwise
	r, w int         // unread bytes are buf[r:w]

	attemptErr error                 // the read error seen by the last attempt
	attemptFn  func(fd uintptr) bool // attempt, bound once so that waiting does not allocate
	attempted  bool                  // what the last tryAttempt's attempt reported
	tryFn      func(fd uintptr)      // tryAttempt, bound once

	// held mirrors buf != nil || len(early) > 0, for a reader outside the WebSocket library that must
	// not touch the fields the library's reads (which may run on another goroutine) change.
	held atomic.Bool
}

func newSocketReader(c net.Conn, early []byte) *socketReader {
	s := &socketReader{conn: c, early: early, raw: rawConn(c)}
	if s.raw != nil {
		s.attemptFn = s.attempt
		s.tryFn = s.tryAttempt
	}
	s.noteHeld()
	return s
}

// noteHeld updates held after buf or early changed.
func (s *socketReader) noteHeld() { s.held.Store(s.buf != nil || len(s.early) > 0) }

// holding reports whether bytes read from the socket are waiting to be consumed. Unlike the other
// methods it may be called concurrently with them.
func (s *socketReader) holding() bool { return s.held.Load() }

// Read implements io.Reader, for the WebSocket library's frame reader.
//
// The library reads through a bufio.Reader of libraryReadBuffer bytes, which asks for at most that
// many when it fills; it gets one byte at a time, so that it never holds bytes beyond those it is
// consuming. Between two calls into the library every byte not yet consumed is then here, where
// holding sees it, and a connection with nothing here and nothing on its socket is idle. Reads of a
// payload (into the caller's buffer, at least libraryReadBuffer bytes) bypass the bufio.Reader and
// are not cut short.
func (s *socketReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.raw != nil && len(p) <= libraryReadBuffer {
		p = p[:1]
	}
	if len(s.early) > 0 {
		n := copy(p, s.early)
		s.early = s.early[n:]
		if len(s.early) == 0 {
			s.early = nil
			s.noteHeld()
		}
		return n, nil
	}
	if s.r == s.w {
		if s.raw == nil || len(p) >= readBufferSize {
			// A read this large needs no staging buffer: the caller's is borrowed already.
			return s.conn.Read(p)
		}
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf[s.r:s.w])
	s.r += n
	if s.r == s.w {
		s.release()
	}
	return n, nil
}

// next returns the bytes waiting to be consumed, first reading from the socket if there are none, and
// marks them consumed. They stay valid until release.
func (s *socketReader) next() ([]byte, error) {
	if len(s.early) > 0 {
		b := s.early
		s.early = nil
		s.noteHeld()
		return b, nil
	}
	if s.r == s.w {
		if err := s.fill(); err != nil {
			return nil, err
		}
	}
	b := s.buf[s.r:s.w]
	s.r = s.w
	return b, nil
}

// tryNext is next without waiting: when nothing has arrived it returns errWouldBlock, holding no
// buffer. Only called with raw set.
func (s *socketReader) tryNext() ([]byte, error) {
	if len(s.early) == 0 && s.r == s.w {
		s.attemptErr, s.attempted = nil, false
		if err := s.raw.Control(s.tryFn); err != nil {
			s.release()
			return nil, err
		}
		if !s.attempted {
			return nil, errWouldBlock
		}
		if err := s.filled(); err != nil {
			return nil, err
		}
	}
	return s.next()
}

// tryAttempt is attempt for tryNext, which does not wait.
func (s *socketReader) tryAttempt(fd uintptr) { s.attempted = s.attempt(fd) }

// release returns the buffer to the pool once everything in it has been consumed.
func (s *socketReader) release() {
	if s.buf != nil && s.r == s.w {
		putReadBuffer(s.buf)
		s.buf = nil
		s.r, s.w = 0, 0
		s.held.Store(false)
	}
}

// fill waits until the socket is readable and reads what has arrived into a borrowed buffer. It
// returns io.EOF when the peer has closed its side. Only called with nothing buffered and raw set.
func (s *socketReader) fill() error {
	s.attemptErr = nil
	if err := s.raw.Read(s.attemptFn); err != nil {
		s.release()
		return err
	}
	return s.filled()
}

// filled reports the outcome of an attempt that read: the error it saw, io.EOF when the peer has
// closed its side, or nil with bytes in buf.
func (s *socketReader) filled() error {
	if s.attemptErr != nil {
		return s.failed()
	}
	if s.r == s.w {
		s.release()
		return io.EOF
	}
	s.held.Store(true)
	return nil
}

// failed reports the error of the last attempt as net reports read errors.
func (s *socketReader) failed() error {
	err := s.attemptErr
	s.attemptErr = nil
	s.release()
	return &net.OpError{Op: "read", Net: s.conn.LocalAddr().Network(), Source: s.conn.LocalAddr(),
		Addr: s.conn.RemoteAddr(), Err: os.NewSyscallError("read", err)}
}

// rawConn returns the socket of c for the connection types whose reads are plain socket reads;
// nil for any other (a TLS connection, for one, must decrypt what it reads).
func rawConn(c net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch t := c.(type) {
	case *net.TCPConn:
		sc = t
	case *net.UnixConn:
		sc = t
	default:
		return nil
	}
	if !canReadRaw {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}
