package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"
)

// Default ports for URLs that name none.
const (
	defaultTCPPort = "61613"
	defaultTLSPort = "61614"
)

// disconnectTimeout bounds the wait for the DISCONNECT receipt.
const disconnectTimeout = 10 * time.Second

// subprotocols are offered on WebSocket, newest first.
var subprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

// endpoint is a parsed -url.
type endpoint struct {
	websocket bool   // ws:// or wss://
	tls       bool   // tcps://, ssl:// or wss://
	address   string // host:port, for TCP
	url       string // the whole URL, for WebSocket
	host      string // host name, for TLS verification
}

// parseEndpoint checks a -url. Errors wrap errUsage.
func parseEndpoint(raw string) (endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return endpoint{}, fmt.Errorf("%w: -url %q: want SCHEME://HOST[:PORT][/PATH] with scheme tcp, tcps, ssl, ws or wss", errUsage, raw)
	}
	ep := endpoint{host: u.Hostname(), url: raw}
	switch u.Scheme {
	case "tcp":
		ep.address = hostPort(u, defaultTCPPort)
	case "tcps", "ssl":
		ep.tls = true
		ep.address = hostPort(u, defaultTLSPort)
	case "ws":
		ep.websocket = true
	case "wss":
		ep.websocket, ep.tls = true, true
	default:
		return endpoint{}, fmt.Errorf("%w: -url %q: unknown scheme %q (want tcp, tcps, ssl, ws or wss)", errUsage, raw, u.Scheme)
	}
	return ep, nil
}

func hostPort(u *url.URL, defaultPort string) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), defaultPort)
}

// tlsConfig builds the client TLS configuration from the flags. Errors reading files are runtime
// errors; a certificate without its key is a usage error.
func (t tlsFlags) config(serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, InsecureSkipVerify: t.insecure, MinVersion: tls.VersionTLS12}
	if t.caFile != "" {
		pem, err := os.ReadFile(t.caFile)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca %s: no PEM certificates found", t.caFile)
		}
		cfg.RootCAs = pool
	}
	if (t.certFile == "") != (t.keyFile == "") {
		return nil, fmt.Errorf("%w: -cert and -key go together", errUsage)
	}
	if t.certFile != "" {
		cert, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
		if err != nil {
			return nil, fmt.Errorf("-cert/-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// session is a connected STOMP client and what watches it.
type session struct {
	conn *stomp.Conn
	tap  *errorTap
}

// connect dials the broker and completes the STOMP handshake within -connect-timeout. Exceeding it
// returns an error wrapping errTimeout; a refused CONNECT returns a *brokerError.
func connect(ctx context.Context, cf *connFlags) (*session, error) {
	ep, err := parseEndpoint(cf.url)
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if ep.tls {
		if tlsCfg, err = cf.tls.config(ep.host); err != nil {
			return nil, err
		}
	} else if cf.tls.any() {
		return nil, fmt.Errorf("%w: -ca, -cert, -key and -insecure need a tcps://, ssl:// or wss:// URL", errUsage)
	}

	ctx, cancel := context.WithTimeout(ctx, cf.connectTimeout)
	defer cancel()
	rwc, err := dialStream(ctx, ep, tlsCfg)
	if err != nil {
		return nil, handshakeError(ctx, cf, fmt.Errorf("connect %s: %w", cf.url, err))
	}
	tap := newErrorTap(rwc)
	// go-stomp bounds the CONNECTED wait only on a net.Conn with a deadline; closing the stream when
	// ctx ends bounds it on every transport.
	stopWatch := context.AfterFunc(ctx, func() { rwc.Close() })
	opts := []func(*stomp.Conn) error{
		stomp.ConnOpt.Host(cf.host),
		stomp.ConnOpt.HeartBeat(cf.heartBeat, cf.heartBeat),
		stomp.ConnOpt.DisconnectReceiptTimeout(disconnectTimeout),
		stomp.ConnOpt.Logger(silentLogger{}),
	}
	if cf.login != "" || cf.passcode != "" {
		opts = append(opts, stomp.ConnOpt.Login(cf.login, cf.passcode))
	}
	conn, err := stomp.Connect(tap, opts...)
	if !stopWatch() {
		if err == nil {
			_ = conn.MustDisconnect()
		}
		return nil, handshakeError(ctx, cf, fmt.Errorf("connect %s: %w", cf.url, context.Cause(ctx)))
	}
	if err != nil {
		rwc.Close()
		if be := tap.brokerError(); be != nil {
			return nil, fmt.Errorf("connect %s: %w", cf.url, be)
		}
		return nil, fmt.Errorf("connect %s: %w", cf.url, err)
	}
	return &session{conn: conn, tap: tap}, nil
}

// handshakeError marks err as a timeout when -connect-timeout, rather than the caller, ended ctx.
func handshakeError(ctx context.Context, cf *connFlags, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: no connection within -connect-timeout %s: %w", errTimeout, cf.connectTimeout, err)
	}
	return err
}

// dialStream opens the byte stream STOMP runs over.
func dialStream(ctx context.Context, ep endpoint, tlsCfg *tls.Config) (io.ReadWriteCloser, error) {
	if ep.websocket {
		opts := &websocket.DialOptions{Subprotocols: subprotocols}
		if tlsCfg != nil {
			tr := &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment}
			defer tr.CloseIdleConnections()
			opts.HTTPClient = &http.Client{Transport: tr}
		}
		c, _, err := websocket.Dial(ctx, ep.url, opts)
		if err != nil {
			return nil, err
		}
		return newWSStream(c), nil
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", ep.address)
	if err != nil {
		return nil, err
	}
	if tlsCfg == nil {
		return nc, nil
	}
	tc := tls.Client(nc, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return tc, nil
}

// fail turns an error from the STOMP client into the command's error, preferring the broker's own
// reason when it sent an ERROR frame. go-stomp reports its own failures (the connection ending, a
// heart-beat timeout) as ERROR frames too; the tap, which reads every byte before go-stomp does,
// tells them apart from the broker's, and a lost connection is reported as such.
func (s *session) fail(what string, err error) error {
	if be := s.tap.brokerError(); be != nil {
		return fmt.Errorf("%s: %w", what, be)
	}
	var se stomp.Error
	if errors.As(err, &se) && se.Frame != nil && se.Frame.Command == "ERROR" {
		if !s.tap.watching() {
			return fmt.Errorf("%s: %w", what, newBrokerError(se.Message, se.Frame.Body))
		}
		if end := s.tap.streamEnd(); end != nil {
			return fmt.Errorf("%s: %w", what, connectionLost(end))
		}
		return fmt.Errorf("%s: %s", what, se.Message)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// connectionLost describes how the stream under the STOMP client ended.
func connectionLost(end error) error {
	if errors.Is(end, io.EOF) {
		return errors.New("connection closed by the broker")
	}
	return fmt.Errorf("connection lost: %w", end)
}

// close disconnects: DISCONNECT with a receipt, so that the broker has handled every earlier frame
// when it returns nil. A broker may instead answer DISCONNECT by closing the connection normally
// (RabbitMQ's Web-STOMP closes the WebSocket with status 1000 and no RECEIPT); that is a success
// too, since a broker handles a connection's frames in order (see errorTap.endedCleanlyOnDisconnect).
// It reports an ERROR the broker sent at any point, and any other end of the connection.
func (s *session) close() error {
	err := s.conn.Disconnect()
	if be := s.tap.brokerError(); be != nil {
		return be
	}
	if err != nil && !isReceiptTimeout(err) && s.tap.endedCleanlyOnDisconnect() {
		// go-stomp closes its side once its frame loop has seen the end; this makes sure.
		s.abort()
		return nil
	}
	if err != nil {
		return s.fail("disconnect", err)
	}
	return nil
}

// abort drops the connection without DISCONNECT, after a failure. A graceful DISCONNECT then could
// wait out its receipt timeout: go-stomp's connection goroutine, handling the ERROR that caused the
// failure, needs the lock Disconnect holds while it waits.
func (s *session) abort() {
	_ = s.conn.MustDisconnect()
}

// silentLogger keeps go-stomp's own log lines off stderr, which belongs to the command's messages;
// every failure it would log reaches the command as an error.
type silentLogger struct{}

func (silentLogger) Debugf(string, ...interface{})   {}
func (silentLogger) Debug(string)                    {}
func (silentLogger) Infof(string, ...interface{})    {}
func (silentLogger) Info(string)                     {}
func (silentLogger) Warningf(string, ...interface{}) {}
func (silentLogger) Warning(string)                  {}
func (silentLogger) Errorf(string, ...interface{})   {}
func (silentLogger) Error(string)                    {}
