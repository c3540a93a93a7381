package stompws

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws/frame"
)

// limitRetryAfter is the Retry-After, in seconds, on WebSocket upgrades refused by a connection limit:
// a slot frees when some other client leaves, which no clock predicts.
const limitRetryAfter = 5

// admission decides whether a new connection may be served, and counts the ones being served. Its
// methods are safe for concurrent use. The connection counters are kept even with no limit set, so
// that turning a limit on needs no other change.
type admission struct {
	maxTotal, maxPerIP int           // 0: unlimited
	accept             *rate.Limiter // nil: accept rate off

	mu    sync.Mutex
	total int
	perIP map[string]int // remote IP → connections being served; an IP at 0 is removed
}

func newAdmission(o *Options) *admission {
	a := &admission{maxPerIP: o.MaxConnectionsPerIP, perIP: make(map[string]int)}
	if o.MaxConnections > 0 {
		a.maxTotal = o.MaxConnections
	}
	if o.AcceptRate > 0 {
		a.accept = rate.NewLimiter(rate.Limit(o.AcceptRate), o.AcceptBurst)
	}
	return a
}

// admit takes a connection slot for remoteAddr (host:port, or a bare host) and returns the IP to give
// back with release. When a limit refuses the connection, refusal is the error to answer and
// retryAfter how many seconds the client should wait before trying again; no slot is taken then.
func (a *admission) admit(remoteAddr string) (ip string, retryAfter int, refusal *protocolError) {
	if a.accept != nil {
		// Allow takes no token when it refuses: a refused connection does not delay the next one.
		if !a.accept.Allow() {
			wait := (1 - a.accept.Tokens()) / float64(a.accept.Limit())
			return "", max(1, int(math.Ceil(wait))), errAcceptRate
		}
	}
	ip = remoteIP(remoteAddr)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.maxTotal > 0 && a.total >= a.maxTotal {
		return "", limitRetryAfter, errTooManyConnections
	}
	if a.maxPerIP > 0 && a.perIP[ip] >= a.maxPerIP {
		return "", limitRetryAfter, errTooManyConnectionsFromIP
	}
	a.total++
	a.perIP[ip]++
	return ip, 0, nil
}

// release gives back the slot admit took for ip.
func (a *admission) release(ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if n := a.perIP[ip] - 1; n > 0 {
		a.perIP[ip] = n
	} else {
		delete(a.perIP, ip)
	}
}

// remoteIP is the host part of a remote address; an address without a port is taken whole. Proxy
// headers such as X-Forwarded-For are not trusted: behind a proxy, every client has the proxy's IP.
func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// refuseHTTP answers a WebSocket upgrade refused by a limit: 503 with Retry-After, before any upgrade.
func (srv *Server) refuseHTTP(w http.ResponseWriter, r *http.Request, pe *protocolError, retryAfter int) {
	srv.opts.Metrics.HandshakeFailed(metrics.HandshakeLimit)
	srv.opts.Logger.Info("websocket handshake refused", "remote", r.RemoteAddr, "reason", metrics.HandshakeLimit.String(),
		"error", pe.message)
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	http.Error(w, pe.message, http.StatusServiceUnavailable)
}

// refusalWriteTimeout bounds the write of the ERROR frame to a refused TCP connection, so that a peer
// that does not read cannot hold up the accept loop.
const refusalWriteTimeout = 100 * time.Millisecond

// refuseTCP answers a TCP connection refused by a limit with an ERROR frame, best effort, and closes it.
// It runs on the accept loop: one short write on a fresh socket, whose send buffer is empty.
func (srv *Server) refuseTCP(c net.Conn, pe *protocolError) {
	srv.opts.Metrics.HandshakeFailed(metrics.HandshakeLimit)
	srv.opts.Logger.Info("tcp connection refused", "remote", c.RemoteAddr().String(), "reason", metrics.HandshakeLimit.String(),
		"error", pe.message)
	b := frame.AppendCommand(nil, frame.ERROR)
	b = frame.AppendHeader(b, frame.V10, "message", pe.message)
	b = frame.AppendBody(b, nil)
	_ = c.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
	// Counted as a handshake failure only: no session began, so no frame or error counter moves.
	_, _ = c.Write(b)
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite() // FIN after the ERROR, so it is not lost to a reset
	}
	_ = c.Close()
}

// newSendLimiter returns the per-session SEND limiter, or nil when SendRate is off.
func newSendLimiter(o *Options) *rate.Limiter {
	if o.SendRate <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(o.SendRate), o.SendBurst)
}

// burstFor is the default burst of a token bucket filling at perSecond: one second's worth, at least 1.
func burstFor(perSecond float64) int {
	return max(1, int(math.Ceil(perSecond)))
}

// startConnectTimer arms the CONNECT deadline. The timer costs no goroutine while it waits.
func (s *session) startConnectTimer() {
	if s.opts.ConnectTimeout <= 0 {
		return
	}
	s.hbMu.Lock()
	defer s.hbMu.Unlock()
	s.connectTimer = time.AfterFunc(s.opts.ConnectTimeout, s.connectTimedOut)
}

// connectArrived disarms the CONNECT deadline: CONNECT has been handled.
func (s *session) connectArrived() {
	s.hbMu.Lock()
	defer s.hbMu.Unlock()
	if s.connectTimer != nil {
		s.connectTimer.Stop()
		s.connectTimer = nil
	}
}

// connectTimedOut closes a connection that has not sent CONNECT in time.
func (s *session) connectTimedOut() {
	s.hbMu.Lock()
	defer s.hbMu.Unlock()
	if s.connectTimer == nil || s.timersStopped || s.closing.Load() {
		return
	}
	s.connectTimer = nil
	s.log.Info("connect timeout", "session", s.id, "remote", s.conn.RemoteAddr(), "timeout", s.opts.ConnectTimeout)
	s.terminate(errConnectTimeout)
}

// newSendBytesLimiter returns the per-session SEND bytes limiter, or nil when SendBytesRate is off.
func newSendBytesLimiter(o *Options) *rate.Limiter {
	if o.SendBytesRate <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(o.SendBytesRate), o.SendBytesBurst)
}

// allowSend spends one token of the session's SEND rate and one per body byte of its bytes budget;
// false means either is exceeded.
func (s *session) allowSend(bodyBytes int) bool {
	if s.sendLimiter != nil && !s.sendLimiter.Allow() {
		return false
	}
	return s.sendBytesLimiter == nil || s.sendBytesLimiter.AllowN(time.Now(), bodyBytes)
}

// resumeStarved restarts deliveries to every subscription of the session after an ACK, NACK or
// UNSUBSCRIBE freed room under Options.MaxUnacked, if some delivery was held back for lack of it.
func (s *session) resumeStarved() {
	if !s.unackedLimit.TakeStarved() {
		return
	}
	for _, sub := range s.subs {
		if sub.ackMode != broker.AckAuto {
			s.broker.Resume(sub.brokerSub.Load())
		}
	}
}
