package stompws

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws/frame"
	"github.com/stompd/stompd/transport"
)

// Subprotocols are the WebSocket subprotocols the server speaks, in preference order: a client offering
// several gets the highest version; a client offering none is served too (the version is then
// negotiated by CONNECT's accept-version alone).
var Subprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

// shutdownRetryAfter is the Retry-After, in seconds, on WebSocket upgrades refused during Shutdown.
const shutdownRetryAfter = 5

// Server serves STOMP sessions over WebSocket (ServeHTTP) and TCP (ServeTCP) on one broker. Its methods
// are safe for concurrent use. Create it with NewServer; stop it with Shutdown.
type Server struct {
	broker *broker.Broker
	opts   Options
	admit  *admission   // connection limits and accept rate of ServeHTTP and ServeTCP
	memory *memoryGuard // nil without Options.MaxMemory

	mu        sync.Mutex
	closing   bool
	sessions  map[*session]struct{}
	listeners map[net.Listener]struct{}
	conns     sync.WaitGroup // ServeConn calls in progress, including TCP connection goroutines

	// parsers holds the frame parsers of sessions waiting for their clients (see session.idle)
	parsers sync.Pool
}

// NewServer returns a Server for b configured by opts (zero fields take their defaults).
func NewServer(b *broker.Broker, opts Options) *Server {
	srv := &Server{
		broker:    b,
		opts:      opts.withDefaults(),
		sessions:  make(map[*session]struct{}),
		listeners: make(map[net.Listener]struct{}),
	}
	srv.admit = newAdmission(&srv.opts)
	srv.memory = newMemoryGuard(srv.opts.MaxMemory, srv.opts.MemorySample, srv.opts.Metrics)
	srv.parsers.New = func() any { return frame.NewParser(srv.opts.Limits) }
	return srv
}

// ServeHTTP upgrades the request to a WebSocket and starts one STOMP session on it, on a goroutine of
// its own that Shutdown waits for; ServeHTTP returns once the session has started. A request that is
// not a valid upgrade or comes from a disallowed Origin gets a 4xx response, one with refused
// credentials 401; one that arrives during Shutdown or is over a connection limit or the accept rate
// gets 503 with Retry-After.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, ip, ok := srv.admitHTTP(w, r)
	if !ok {
		return
	}
	sessionStarted := false // then the session's goroutine releases the admission slot
	defer func() {
		if !sessionStarted {
			srv.admit.release(ip)
		}
	}()
	opts := transport.WebSocketOptions{
		Options:        srv.opts.transportOptions(),
		Subprotocols:   Subprotocols,
		OriginPatterns: srv.opts.OriginPatterns,
		ReadLimit:      int64(srv.opts.Limits.MaxFrameBytes) + 64<<10,
	}
	conn, err := transport.AcceptWebSocket(w, r, opts)
	if err != nil {
		reason := metrics.HandshakeBadRequest
		var he *transport.HandshakeError
		if errors.As(err, &he) && he.Status == http.StatusForbidden {
			reason = metrics.HandshakeOrigin
		}
		srv.opts.Metrics.HandshakeFailed(reason)
		srv.opts.Logger.Info("websocket handshake refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"),
			"reason", reason.String(), "error", err)
		return
	}
	// The session runs on a goroutine of its own and this handler returns: net/http lets go of the
	// request, its buffers and the handler's stack, which an idle connection would otherwise hold for
	// its whole life. The request context ended with the handler; the session has its own lifetime.
	if !srv.addConn() {
		conn.Abort()
		return
	}
	sessionStarted = true
	go srv.startSession(ctx, conn, func() {
		srv.admit.release(ip)
		srv.conns.Done()
	})
}

// admitHTTP decides on an HTTP request that would start a session (a WebSocket upgrade, a new SockJS
// session): during Shutdown, over a connection limit or the accept rate it answers 503 with
// Retry-After, and with refused credentials 401. When it admits the request it returns the session's
// context and the admission slot taken for ip, which the caller must release once.
func (srv *Server) admitHTTP(w http.ResponseWriter, r *http.Request) (context.Context, string, bool) {
	if srv.isClosing() {
		srv.opts.Metrics.HandshakeFailed(metrics.HandshakeShuttingDown)
		w.Header().Set("Retry-After", strconv.Itoa(shutdownRetryAfter))
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return nil, "", false
	}
	ip, retryAfter, refusal := srv.admit.admit(r.RemoteAddr)
	if refusal != nil {
		srv.refuseHTTP(w, r, refusal, retryAfter)
		return nil, "", false
	}
	ctx, ok := srv.authenticateHandshake(sessionContext(r), w, r)
	if !ok {
		srv.admit.release(ip)
		return nil, "", false
	}
	return ctx, ip, true
}

// sessionContext is the context a WebSocket session starts from: a fresh one, carrying only a
// principal already on the request's context (put there by an authenticating middleware). The
// request's own context, and what net/http hangs on it, is let go with the request.
func sessionContext(r *http.Request) context.Context {
	if p, ok := principalFrom(r.Context()); ok {
		return WithPrincipal(context.Background(), p)
	}
	return context.Background()
}

// ServeTCP accepts STOMP connections from l until Shutdown, serving each on its own goroutine. It always
// returns a non-nil error: ErrServerClosed after Shutdown.
func (srv *Server) ServeTCP(l net.Listener) error {
	if !srv.trackListener(l, true) {
		_ = l.Close()
		return ErrServerClosed
	}
	defer srv.trackListener(l, false)
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if srv.isClosing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors or similar: wait instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		ip, _, refusal := srv.admit.admit(c.RemoteAddr().String())
		if refusal != nil {
			srv.refuseTCP(c, refusal)
			continue
		}
		conn := transport.NewTCPConn(c, srv.opts.transportOptions())
		if !srv.addConn() {
			srv.admit.release(ip)
			conn.Abort()
			continue
		}
		go srv.startSession(context.Background(), conn, func() {
			srv.admit.release(ip)
			srv.conns.Done()
		})
	}
}

// ServeConn serves one STOMP session on c until it ends, then returns; it returns ErrServerClosed at
// once (aborting c) during or after Shutdown. Cancelling ctx ends the session as Shutdown does. The
// session owns c: it sets c's drain callback and closes c.
func (srv *Server) ServeConn(ctx context.Context, c transport.Conn) error {
	if !srv.addConn() {
		c.Abort()
		return ErrServerClosed
	}
	done := make(chan struct{})
	if !srv.startSession(ctx, c, func() {
		srv.conns.Done()
		close(done)
	}) {
		return ErrServerClosed
	}
	<-done
	return nil
}

// startSession registers a session on c and starts it; ended is called once it has ended and been
// unregistered, also when it could not start (the server is shutting down), which startSession then
// reports with false. The caller has counted the connection in srv.conns, and ended must release it.
// startSession returns when the session has ended or its connection waits for the client without a
// goroutine; see session.start.
func (srv *Server) startSession(ctx context.Context, c transport.Conn, ended func()) bool {
	s := newSession(srv)
	s.principal, s.authenticated = principalFrom(ctx)
	switch c.Transport() {
	case "tcp":
		s.transport = metrics.TransportTCP
	case "sockjs":
		s.transport = metrics.TransportSockJS
	default:
		s.transport = metrics.TransportWS
	}
	c.SetOnDrain(s.onDrain)
	srv.mu.Lock()
	if srv.closing {
		srv.mu.Unlock()
		c.Abort()
		ended()
		return false
	}
	s.conn = c
	srv.sessions[s] = struct{}{}
	srv.mu.Unlock()
	s.start(ctx, func() {
		srv.mu.Lock()
		delete(srv.sessions, s)
		srv.mu.Unlock()
		ended()
	})
	return true
}

// addConn counts a connection about to be served, unless the server is closing.
func (srv *Server) addConn() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closing {
		return false
	}
	srv.conns.Add(1)
	return true
}

func (srv *Server) trackListener(l net.Listener, add bool) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if add {
		if srv.closing {
			return false
		}
		srv.listeners[l] = struct{}{}
	} else {
		delete(srv.listeners, l)
	}
	return true
}

func (srv *Server) isClosing() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.closing
}

// StopAccepting makes the server refuse new connections — WebSocket upgrades get 503 with Retry-After,
// TCP listeners are closed — while existing sessions go on. It is the first step of a graceful
// shutdown, giving load balancers time to notice before Shutdown tells the clients to go. Safe to call
// more than once.
func (srv *Server) StopAccepting() {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.closing = true
	for l := range srv.listeners {
		_ = l.Close()
	}
}

// MemoryAlarm reports whether the memory alarm is on (Options.MaxMemory): SENDs are being held back.
// It may sample the heap. False without a memory limit.
func (srv *Server) MemoryAlarm() bool { return srv.memory.alarmed() }

// Accepting reports whether the server accepts new connections (false once StopAccepting or Shutdown
// has been called).
func (srv *Server) Accepting() bool { return !srv.isClosing() }

// Shutdown stops accepting connections, sends every session an ERROR "server shutting down", flushes
// and closes them, and waits until every session has ended. If ctx ends first, the remaining connections
// are closed at once and ctx's error is returned after they have ended. Calling Shutdown more than
// once is safe.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.StopAccepting()
	srv.mu.Lock()
	sessions := make([]*session, 0, len(srv.sessions))
	for s := range srv.sessions {
		sessions = append(sessions, s)
	}
	srv.mu.Unlock()

	for _, s := range sessions {
		s.terminate(errShuttingDown)
	}
	done := make(chan struct{})
	go func() {
		srv.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, s := range sessions {
			s.conn.Abort()
		}
		<-done
		return ctx.Err()
	}
}

// OutboundBytes reports the bytes queued on all sessions' connections, waiting for their sockets. It
// takes the server's lock and each connection's briefly: call it at scrape rate.
func (srv *Server) OutboundBytes() int64 {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var n int64
	for s := range srv.sessions {
		n += int64(s.conn.Queued())
	}
	return n
}

// TransactionBytes reports the bytes of the SENDs held in open transactions on all sessions, waiting for
// COMMIT. It takes the server's lock briefly: call it at scrape rate.
func (srv *Server) TransactionBytes() int64 {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var n int64
	for s := range srv.sessions {
		n += s.txBytes.Load()
	}
	return n
}

// SessionCount reports the sessions currently being served.
func (srv *Server) SessionCount() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}
