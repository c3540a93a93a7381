package transport

import (
	"errors"
	"sync/atomic"
	"syscall"
)

// Parked readers. A connection that has nothing to read costs a goroutine, and a goroutine's stack is
// most of what an idle connection costs: the stack of one that has been through the WebSocket
// library's read path stays at 8 KiB while it waits. ServeReads lets such a connection wait without a
// goroutine: its socket is handed to the poller, and reading continues on a new goroutine when bytes
// arrive or the connection closes.

// errWouldBlock is returned by readPooledNoWait when nothing has arrived.
var errWouldBlock = errors.New("transport: nothing to read yet")

// parkableConn is implemented by the Conns of this package that can wait for inbound bytes without a
// goroutine: those over a socket the poller can watch.
type parkableConn interface {
	Conn
	// readPooledNoWait is readPooled, except that where readPooled would wait for bytes to arrive it
	// returns errWouldBlock at once, holding no buffer and no bytes of the stream.
	readPooledNoWait(f func(p []byte)) (int, error)
	// parkSocket returns the socket the poller watches for the connection; nil when it has none (a TLS
	// connection, whose reads must go through the TLS layer).
	parkSocket() syscall.RawConn
	// parkState returns the connection's parking state.
	parkState() *parking
}

// parking is a connection's side of parking. The reader writes token and registered while it parks;
// the closing side sets dead and wakes the reader parked under token, if any.
type parking struct {
	token      atomic.Uint64 // the reader's latest park, 0 before the first
	registered atomic.Bool   // the socket is in the poller's set (armed or not)
	dead       atomic.Bool   // the connection is closing or torn down: readers no longer park
}

// wake is called once the connection is closing or torn down: a reader parked then resumes (and finds
// out), and a reader about to park does not.
func (p *parking) wake() {
	p.dead.Store(true)
	token := p.token.Load()
	if token == 0 {
		return
	}
	if pl, _ := getPoller(); pl != nil {
		if r := pl.take(token); r != nil {
			workers.run(r.resumeFn)
		}
	}
}

// ServeReads reads c until after says to stop, calling f with each run of inbound bytes and then after
// with the read's outcome, as a loop over ReadPooled(c, f) followed by after(err) would; reading stops
// when after returns false. Before c parks (below), idle is called, unless nil, to let go of what the
// reader can rebuild. f, after and idle are called one at a time, each call happening after the
// previous one returned, but not always on the same goroutine.
//
// ServeReads returns once reading has stopped, or once c has nothing to read and can wait without a
// goroutine: a WebSocket or TCP connection over a TCP or Unix socket (not TLS), on Linux. Such a
// connection is then parked: the process's poller watches its socket, and reading continues on a new
// goroutine when bytes arrive, when the peer goes away, or when c is closed or aborted, so that after
// always gets to see how c ended. Any other connection is read on the calling goroutine until after
// returns false.
//
// Over WebSocket a connection parks only between messages: a message that arrives in pieces, or a
// ping or pong, is waited for on a goroutine.
func ServeReads(c Conn, f func(p []byte), after func(err error) bool, idle func()) {
	if pc, ok := c.(parkableConn); ok && parkingSupported && pc.parkSocket() != nil {
		r := &readPump{conn: pc, f: f, after: after, idle: idle}
		r.resumeFn = r.run
		r.run()
		return
	}
	for {
		_, err := ReadPooled(c, f)
		if !after(err) {
			return
		}
	}
}

// ParkedReaders reports how many connections of the process are parked: waiting for inbound bytes
// without a goroutine.
func ParkedReaders() int {
	if !parkingSupported {
		return 0
	}
	p, _ := getPoller()
	if p == nil {
		return 0
	}
	return p.count()
}

// readPump is ServeReads for a parkable connection.
//
// Once a reader is parked, another goroutine may run it at any moment, with no ordering the race
// detector can see between the parking goroutine's last steps (arming the socket) and the new one's
// first: what park touches after publishing the reader to the poller is therefore immutable or atomic.
type readPump struct {
	conn     parkableConn
	f        func(p []byte)
	after    func(err error) bool
	idle     func()
	resumeFn func()      // run, bound once: what the poller hands a worker when the reader is woken
	woken    atomic.Bool // the poller saw the socket readable: the next read need not look first

	poller    *poller          // the process's poller, set before the first park
	armFn     func(fd uintptr) // armSocket, bound once so that parking does not allocate
	armResult atomic.Uint64    // the token armSocket last armed, shifted left once; low bit set when it failed
}

// run reads until after says stop, or until the connection parks; the goroutine running it then has
// nothing left to do, and the pump must not be touched again by it.
func (r *readPump) run() {
	for {
		var err error
		if r.woken.Swap(false) {
			// Readable (or ended) a moment ago: reading waits for nothing, or for the rest of a
			// message whose start has arrived.
			_, err = ReadPooled(r.conn, r.f)
		} else {
			_, err = r.conn.readPooledNoWait(r.f)
		}
		if err == errWouldBlock {
			if r.idle != nil {
				r.idle()
			}
			parked, parkErr := r.park()
			if parked {
				return
			}
			if parkErr == nil {
				continue // the connection is going away: the next read says how
			}
			_, err = ReadPooled(r.conn, r.f) // no poller: wait here
		}
		if !r.after(err) {
			return
		}
	}
}

// errArmFailed reports that the poller refused to watch a socket; the reader then waits on its
// goroutine.
var errArmFailed = errors.New("transport: the poller cannot watch the socket")

// park hands the connection's socket to the poller. It reports true when the reader is parked (from
// then on another goroutine may be running it); false with a nil error when the connection is going
// away and should be read again, and false with an error when parking is impossible.
func (r *readPump) park() (bool, error) {
	if r.poller == nil {
		pl, err := getPoller()
		if err != nil {
			return false, err
		}
		r.poller, r.armFn = pl, r.armSocket
	}
	pl := r.poller
	state := r.conn.parkState()
	token := pl.add(r)
	state.token.Store(token)
	if err := r.conn.parkSocket().Control(r.armFn); err != nil {
		// The socket is closed: the connection is going away.
		if pl.take(token) == nil {
			return true, nil // woken already: whoever took the token runs the reader
		}
		return false, nil
	}
	// A result under another token means the reader runs elsewhere already and has parked again.
	result := r.armResult.Load()
	if result>>1 != token {
		return true, nil
	}
	armed := result&1 == 0
	// dead is read after the token was published: a wake that comes later finds the token and
	// resumes the reader; one that came earlier set dead, seen here.
	if armed && !state.dead.Load() {
		return true, nil
	}
	if pl.take(token) == nil {
		return true, nil // woken already: whoever took the token runs the reader
	}
	if !armed && !state.dead.Load() {
		return false, errArmFailed
	}
	return false, nil
}

// armSocket arms the connection's socket with the poller under the connection's current token.
// registered is only a hint (arm copes with a socket that is, or is not, in the poller's set), so it is
// not undone on failure.
func (r *readPump) armSocket(fd uintptr) {
	state := r.conn.parkState()
	token := state.token.Load()
	registered := state.registered.Swap(true)
	result := token << 1
	if err := r.poller.arm(int(fd), token, registered); err != nil {
		result |= 1
	}
	r.armResult.Store(result)
}
