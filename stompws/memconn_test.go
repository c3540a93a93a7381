package stompws

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/stompd/stompd/transport"
)

// memConn is an in-memory transport.Conn for tests and benchmarks: Read plays a script (in chunks of at
// most chunk bytes when chunk > 0), then blocks until Close — or returns io.EOF at once when eof is
// set, like a peer that sent its bytes and left. Enqueue never refuses for lack of room; it counts what
// a socket would have been handed and, when capture is set, keeps a copy.
type memConn struct {
	script []byte
	chunk  int
	eof    bool

	closed chan struct{}
	once   sync.Once
	frames atomic.Int64
	bytes  atomic.Int64

	trackTails bool     // record distinct tail pointers (not concurrency-safe to toggle while delivering)
	tails      sync.Map // distinct tail base pointers seen, to prove the shared part is not copied per delivery

	capture  bool
	mu       sync.Mutex
	captured []byte // everything enqueued, in order, while capture is set
}

func newMemConn(script string) *memConn {
	return &memConn{script: []byte(script), closed: make(chan struct{})}
}

func (c *memConn) Read(p []byte) (int, error) {
	if len(c.script) > 0 {
		if c.chunk > 0 && len(p) > c.chunk {
			p = p[:c.chunk]
		}
		n := copy(p, c.script)
		c.script = c.script[n:]
		return n, nil
	}
	if c.eof {
		return 0, io.EOF
	}
	<-c.closed
	return 0, io.EOF
}

func (c *memConn) Enqueue(head, tail []byte, binary bool) error {
	select {
	case <-c.closed:
		return transport.ErrClosed
	default:
	}
	c.frames.Add(1)
	c.bytes.Add(int64(len(head) + len(tail)))
	if c.trackTails && len(tail) > 0 {
		c.tails.Store(unsafe.SliceData(tail), true)
	}
	if c.capture {
		c.mu.Lock()
		c.captured = append(append(c.captured, head...), tail...)
		c.mu.Unlock()
	}
	return nil
}

// output returns a copy of what was captured.
func (c *memConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.captured...)
}

func (c *memConn) SetOnDrain(func())    {}
func (c *memConn) Queued() int          { return 0 }
func (c *memConn) LastWrite() time.Time { return time.Now() }
func (c *memConn) Written() uint64      { return uint64(c.bytes.Load()) }
func (c *memConn) Close(context.Context, transport.CloseCode, string) error {
	c.Abort()
	return nil
}
func (c *memConn) Abort()              { c.once.Do(func() { close(c.closed) }) }
func (c *memConn) Transport() string   { return "mem" }
func (c *memConn) Subprotocol() string { return "" }
func (c *memConn) RemoteAddr() string  { return "memory" }
