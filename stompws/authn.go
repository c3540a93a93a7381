package stompws

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws/auth"
	"github.com/stompd/stompd/stompws/frame"
	"github.com/stompd/stompd/transport"
)

// HandshakeAuth says what the WebSocket upgrade demands of credentials.
type HandshakeAuth uint8

const (
	// HandshakeAuthOptional checks credentials presented at the upgrade (an Authorization header, Basic
	// or Bearer, or an access_token query parameter) and refuses the upgrade with 401 when they are
	// bad; a client that presents none may still authenticate in CONNECT. The default.
	HandshakeAuthOptional HandshakeAuth = iota
	// HandshakeAuthRequired refuses with 401 every upgrade without good credentials, before any
	// WebSocket traffic. STOMP over TCP, which has no handshake, still authenticates in CONNECT.
	HandshakeAuthRequired
)

// DefaultAuthFailureDelay is the default Options.AuthFailureDelay.
const DefaultAuthFailureDelay = time.Second

// principalKey carries a principal authenticated before the session began.
type principalKey struct{}

// WithPrincipal returns a context that makes ServeConn treat its connection as already authenticated
// as p, as ServeHTTP does for credentials presented at the WebSocket upgrade: CONNECT's own credentials
// are then not asked for. p.Expires still ends the session when it passes.
func WithPrincipal(ctx context.Context, p auth.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

func principalFrom(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(auth.Principal)
	return p, ok
}

// authOn reports whether clients must authenticate.
func (o *Options) authOn() bool { return o.Authenticator.Enabled() }

// handshakeCredentials reads what r presents: an Authorization header (Bearer or Basic), else an
// access_token query parameter, which browsers use because their WebSocket API cannot set headers.
func handshakeCredentials(r *http.Request) (auth.Credentials, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		if token, ok := cutScheme(h, "Bearer"); ok {
			return auth.Credentials{Bearer: token}, true
		}
		if login, passcode, ok := r.BasicAuth(); ok {
			return auth.Credentials{Login: login, Passcode: passcode}, true
		}
		return auth.Credentials{}, true // present but unusable: refused, never ignored
	}
	if token := r.URL.Query().Get("access_token"); token != "" {
		return auth.Credentials{Bearer: token}, true
	}
	return auth.Credentials{}, false
}

// cutScheme returns the credentials of an Authorization value with the given scheme (case-insensitive).
func cutScheme(h, scheme string) (string, bool) {
	if len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) && h[len(scheme)] == ' ' {
		return strings.TrimSpace(h[len(scheme)+1:]), true
	}
	return "", false
}

// authenticateHandshake checks the credentials of a WebSocket upgrade. It returns the context to serve
// the session with (carrying the principal, if any) and false once it has answered 401.
func (srv *Server) authenticateHandshake(ctx context.Context, w http.ResponseWriter, r *http.Request) (context.Context, bool) {
	if !srv.opts.authOn() {
		return ctx, true
	}
	creds, presented := handshakeCredentials(r)
	if !presented {
		if srv.opts.HandshakeAuth != HandshakeAuthRequired {
			return ctx, true
		}
		srv.opts.Metrics.AuthAttempted(metrics.AuthNone, metrics.AuthFailure)
		srv.refuseUnauthorized(w, r, nil, "authentication required")
		return ctx, false
	}
	p, err := srv.opts.Authenticator.Authenticate(creds)
	srv.opts.Metrics.AuthAttempted(authMethodLabel(p, err), authResultLabel(err))
	if err != nil {
		message := "authentication failed"
		if errors.Is(err, auth.ErrTokenExpired) {
			message = "token expired"
		}
		srv.refuseUnauthorized(w, r, err, message)
		return ctx, false
	}
	return WithPrincipal(ctx, p), true
}

// refuseUnauthorized answers 401 with a WWW-Authenticate challenge per configured method (RFC 6750's
// invalid_token error when a token was refused). The log line carries the remote address and the
// reason, never the credentials nor the query string, which may hold an access_token.
func (srv *Server) refuseUnauthorized(w http.ResponseWriter, r *http.Request, err error, message string) {
	srv.opts.Metrics.HandshakeFailed(metrics.HandshakeAuth)
	srv.opts.Logger.Info("websocket handshake refused", "remote", r.RemoteAddr, "reason", metrics.HandshakeAuth.String(),
		"error", message, "detail", errDetail(err))
	for _, m := range srv.opts.Authenticator.Methods() {
		switch m {
		case auth.MethodJWT:
			challenge := `Bearer realm="stompd"`
			if err != nil {
				challenge += `, error="invalid_token", error_description="` + message + `"`
			}
			w.Header().Add("WWW-Authenticate", challenge)
		case auth.MethodPasscode:
			w.Header().Add("WWW-Authenticate", `Basic realm="stompd", charset="UTF-8"`)
		}
	}
	http.Error(w, message, http.StatusUnauthorized)
}

func errDetail(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// authMethodLabel is the metrics label for an attempt with creds: the method Authenticate reports
// it tried (set on refusals too), or none when nothing checkable was presented.
func authMethodLabel(p auth.Principal, err error) metrics.AuthMethod {
	switch {
	case errors.Is(err, auth.ErrNoCredentials):
		return metrics.AuthNone
	case p.Method == auth.MethodJWT:
		return metrics.AuthJWT
	case p.Method == auth.MethodPasscode:
		return metrics.AuthPasscode
	}
	return metrics.AuthNone
}

func authResultLabel(err error) metrics.AuthResult {
	switch {
	case err == nil:
		return metrics.AuthSuccess
	case errors.Is(err, auth.ErrTokenExpired):
		return metrics.AuthExpired
	}
	return metrics.AuthFailure
}

// authenticateConnect establishes who the client is at CONNECT: the principal from the handshake, if
// there was one, else CONNECT's login and passcode headers or an Authorization: Bearer header. A
// refusal waits Options.AuthFailureDelay first, to slow down guessing.
func (s *session) authenticateConnect(f *frame.Frame) *protocolError {
	if !s.opts.authOn() {
		return nil
	}
	if s.authenticated {
		return s.checkNotExpired()
	}
	var creds auth.Credentials
	if v, ok := f.Get("login"); ok {
		creds.Login = string(v)
	}
	if v, ok := f.Get("passcode"); ok {
		creds.Passcode = string(v)
	}
	for _, name := range []string{"Authorization", "authorization"} {
		if v, ok := f.Get(name); ok {
			creds.Bearer, _ = cutScheme(string(v), "Bearer")
			break
		}
	}
	p, err := s.opts.Authenticator.Authenticate(creds)
	s.metrics.AuthAttempted(authMethodLabel(p, err), authResultLabel(err))
	if err != nil {
		s.log.Info("authentication failed", "session", s.id, "remote", s.conn.RemoteAddr(), "login", creds.Login,
			"error", err)
		if d := s.opts.AuthFailureDelay; d > 0 {
			time.Sleep(d)
		}
		if errors.Is(err, auth.ErrTokenExpired) {
			return errTokenExpired
		}
		return errAuthFailed
	}
	s.principal, s.authenticated = p, true
	return nil
}

// checkNotExpired refuses a principal whose token has already expired.
func (s *session) checkNotExpired() *protocolError {
	if !s.principal.Expires.IsZero() && !time.Now().Before(s.principal.Expires) {
		return errTokenExpired
	}
	return nil
}

// startExpiryTimer ends the session with ERROR "token expired" when its token's exp passes. The timer
// costs no goroutine while it waits.
func (s *session) startExpiryTimer() {
	if s.principal.Expires.IsZero() {
		return
	}
	s.hbMu.Lock()
	defer s.hbMu.Unlock()
	if s.timersStopped {
		return
	}
	s.expiryTimer = time.AfterFunc(time.Until(s.principal.Expires), func() {
		s.hbMu.Lock()
		defer s.hbMu.Unlock()
		if s.timersStopped || s.closing.Load() {
			return
		}
		s.log.Info("token expired", "session", s.id, "remote", s.conn.RemoteAddr(), "user", s.principal.User)
		s.terminate(errTokenExpired)
	})
}

// authorize checks that the session's user may publish to (or subscribe to) dest, as the client
// named it. A session's own temporary queues, and SENDs of replies to other sessions' ones, are always
// allowed, so that request-reply works whatever the rules say; subscribing to another session's reply
// queue goes through the rules like any destination.
func (s *session) authorize(dest string, publish bool) *protocolError {
	if !s.opts.authOn() || strings.HasPrefix(dest, tempQueuePrefix) ||
		(publish && strings.HasPrefix(dest, replyQueuePrefix)) {
		return nil
	}
	if publish && s.opts.Policy.CanPublish(s.principal, dest) {
		return nil
	}
	if !publish && s.opts.Policy.CanSubscribe(s.principal, dest) {
		return nil
	}
	verb := "SUBSCRIBE to"
	if publish {
		verb = "SEND to"
	}
	return &protocolError{
		message:     "access denied",
		detail:      verb + " " + dest + " is not allowed for user " + s.principal.User,
		code:        transport.ClosePolicyViolation,
		reason:      metrics.ErrorAccessDenied,
		closeReason: metrics.CloseAccessDenied,
	}
}
