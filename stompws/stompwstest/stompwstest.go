// Package stompwstest runs an in-process stompd for tests, as net/http/httptest does for HTTP servers:
// a broker, a stompws.Server, STOMP over WebSocket on an httptest server and STOMP over TCP on a
// loopback listener, all shut down when the test ends.
package stompwstest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws"
)

// shutdownTimeout bounds the Shutdown run when the test ends.
const shutdownTimeout = 20 * time.Second

// Config configures Start. The zero value serves the defaults, except that heart-beats are off unless
// Options sets them (tests that need them turn them on).
type Config struct {
	Options       stompws.Options
	BrokerOptions broker.Options
	// Routes are extra HTTP handlers served beside /ws, by ServeMux pattern.
	Routes map[string]http.Handler
	// OnStart runs once the broker exists, before any client can connect (start publishers here).
	OnStart []func(*broker.Broker)
	// TLS serves WebSocket as wss:// and TCP over TLS, both with httptest's certificate for 127.0.0.1
	// (Server.Certificate).
	TLS bool
	// ClientCAs, with TLS, makes both listeners require a client certificate signed by one of them.
	ClientCAs *x509.CertPool
	// HeartBeats lets the server take part in heart-beats as it does in production. Without it the
	// server declines them in both directions, so that tests see only the frames they expect.
	HeartBeats bool
}

// Server is a running in-process stompd.
type Server struct {
	Broker  *broker.Broker
	STOMP   *stompws.Server
	WSURL   string // ws://127.0.0.1:port/ws, or wss:// with Config.TLS
	HTTPURL string // http://127.0.0.1:port, or https://
	// SockJSURL is where STOMP over SockJS is served: HTTPURL + "/stomp".
	SockJSURL string
	TCPAddr   string // 127.0.0.1:port, speaking TLS with Config.TLS

	// Certificate is the server's certificate with Config.TLS, nil without: a client that trusts it
	// verifies both listeners.
	Certificate *x509.Certificate
}

// Start starts a server and registers its shutdown with t.Cleanup; the shutdown must leave nothing
// running, and ServeTCP must end with ErrServerClosed, or the test fails.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if !cfg.HeartBeats {
		cfg.Options.NoHeartBeatSend, cfg.Options.NoHeartBeatReceive = true, true
	}
	b := broker.New(cfg.BrokerOptions)
	for _, f := range cfg.OnStart {
		f(b)
	}
	srv := stompws.NewServer(b, cfg.Options)
	mux := http.NewServeMux()
	mux.Handle("/ws", srv)
	sockjs := srv.SockJSHandler("/stomp")
	mux.Handle("/stomp", sockjs)
	mux.Handle("/stomp/", sockjs)
	for pattern, h := range cfg.Routes {
		mux.Handle(pattern, h)
	}
	var hs *httptest.Server
	if cfg.TLS {
		hs = httptest.NewUnstartedServer(mux)
		if cfg.ClientCAs != nil {
			hs.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: cfg.ClientCAs}
		}
		hs.StartTLS()
	} else {
		hs = httptest.NewServer(mux)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		hs.Close()
		t.Fatal(err)
	}
	if cfg.TLS {
		tcpTLS := &tls.Config{Certificates: hs.TLS.Certificates}
		if cfg.ClientCAs != nil {
			tcpTLS.ClientAuth, tcpTLS.ClientCAs = tls.RequireAndVerifyClientCert, cfg.ClientCAs
		}
		ln = tls.NewListener(ln, tcpTLS)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTCP(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, stompws.ErrServerClosed) {
			t.Errorf("ServeTCP returned %v, want ErrServerClosed", err)
		}
		hs.Close()
	})
	return &Server{
		Broker:      b,
		STOMP:       srv,
		WSURL:       "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws",
		HTTPURL:     hs.URL,
		SockJSURL:   hs.URL + "/stomp",
		TCPAddr:     ln.Addr().String(),
		Certificate: hs.Certificate(),
	}
}
