package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/stompd/stompd/stompws/frame"
)

// benchDialer opens a run's connections to one broker: TCP, TLS or WebSocket, each from the next of
// the -source-ips addresses, and completes the STOMP handshake with heart-beats off. Safe for
// concurrent use.
type benchDialer struct {
	ep        endpoint
	tlsConfig *tls.Config // nil without TLS
	sources   []net.IP    // local addresses, used in turn; nil lets the kernel choose
	next      atomic.Uint64
	http      *http.Client // WebSocket handshakes; nil for TCP
	connect   []byte       // the CONNECT frame, the same for every connection
}

// benchReadBuffer is the read buffer of a connection that carries messages; it lets one read take
// in what a broker coalesced into one write.
const benchReadBuffer = 32 << 10

// handshakeReadBuffer reads CONNECTED and RECEIPT frames; idle connections keep nothing bigger.
const handshakeReadBuffer = 512

func newBenchDialer(cf *connFlags, sourceIPs int) (*benchDialer, error) {
	ep, err := parseEndpoint(cf.url)
	if err != nil {
		return nil, err
	}
	d := &benchDialer{ep: ep}
	if ep.tls {
		if d.tlsConfig, err = cf.tls.config(ep.host); err != nil {
			return nil, err
		}
	} else if cf.tls.any() {
		return nil, fmt.Errorf("%w: -ca, -cert, -key and -insecure need a tcps://, ssl:// or wss:// URL", errUsage)
	}
	if sourceIPs > 1 {
		for i := 1; i <= sourceIPs; i++ {
			d.sources = append(d.sources, net.IPv4(127, 0, 0, byte(i)))
		}
	}
	if ep.websocket {
		d.http = &http.Client{Transport: &http.Transport{
			DialContext:       d.dialTCP,
			TLSClientConfig:   d.tlsConfig,
			DisableKeepAlives: true,
			// No proxy: a load tool measures the broker, not whatever stands in front of it.
		}}
	}
	d.connect = frame.AppendCommand(nil, frame.CONNECT)
	d.connect = frame.AppendHeader(d.connect, frame.V10, "accept-version", "1.0,1.1,1.2")
	d.connect = frame.AppendHeader(d.connect, frame.V10, "host", cf.host)
	d.connect = frame.AppendHeader(d.connect, frame.V10, "heart-beat", "0,0")
	if cf.login != "" || cf.passcode != "" {
		d.connect = frame.AppendHeader(d.connect, frame.V10, "login", cf.login)
		d.connect = frame.AppendHeader(d.connect, frame.V10, "passcode", cf.passcode)
	}
	d.connect = frame.AppendBody(d.connect, nil)
	return d, nil
}

// transport names the kind of connection for reports: ws, wss, tcp or tls.
func (d *benchDialer) transport() string {
	switch {
	case d.ep.websocket && d.ep.tls:
		return "wss"
	case d.ep.websocket:
		return "ws"
	case d.ep.tls:
		return "tls"
	}
	return "tcp"
}

// close releases what the dialer keeps between dials.
func (d *benchDialer) close() {
	if d.http != nil {
		d.http.CloseIdleConnections()
	}
}

// rawConnKey carries, in a WebSocket handshake's context, where dialTCP leaves the TCP socket.
type rawConnKey struct{}

// dialTCP opens a TCP connection from the next source address. For a WebSocket handshake it also
// hands the socket back through the context, since the WebSocket connection does not expose it.
func (d *benchDialer) dialTCP(ctx context.Context, network, address string) (net.Conn, error) {
	var nd net.Dialer
	if len(d.sources) > 0 {
		nd.LocalAddr = &net.TCPAddr{IP: d.sources[(d.next.Add(1)-1)%uint64(len(d.sources))]}
	}
	c, err := nd.DialContext(ctx, network, address)
	if err == nil {
		if slot, ok := ctx.Value(rawConnKey{}).(*net.Conn); ok {
			*slot = c
		}
	}
	return c, err
}

// dial opens one connection and completes the STOMP handshake within ctx. A refused CONNECT
// returns a *brokerError.
func (d *benchDialer) dial(ctx context.Context) (*benchConn, error) {
	c := &benchConn{parser: frame.NewParser(frame.Limits{}), buf: make([]byte, handshakeReadBuffer)}
	if d.ep.websocket {
		ctx := context.WithValue(ctx, rawConnKey{}, &c.raw)
		ws, _, err := websocket.Dial(ctx, d.ep.url, &websocket.DialOptions{HTTPClient: d.http, Subprotocols: subprotocols})
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", d.ep.url, err)
		}
		if d.tlsConfig == nil {
			c.stream = newRawWSStream(ws, c.raw)
		} else {
			c.stream = wsTextStream{newWSStream(ws)}
		}
	} else {
		raw, err := d.dialTCP(ctx, "tcp", d.ep.address)
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", d.ep.url, err)
		}
		c.raw, c.stream = raw, raw
		if d.tlsConfig != nil {
			tc := tls.Client(raw, d.tlsConfig)
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, fmt.Errorf("connect %s: %w", d.ep.url, err)
			}
			c.stream = tc
		}
	}
	if err := c.handshake(ctx, d.connect); err != nil {
		c.close()
		return nil, fmt.Errorf("connect %s: %w", d.ep.url, err)
	}
	return c, nil
}

// benchConn is one STOMP connection of a run. Its stream is read by one goroutine at a time and
// written by one goroutine at a time (a publisher, or a receiver sending ACKs); close may be called
// from any goroutine.
type benchConn struct {
	stream  io.ReadWriteCloser
	raw     net.Conn // the TCP socket under stream
	version frame.Version
	parser  *frame.Parser
	buf     []byte

	// acksBroken is set for a broker known to mishandle ACKs, on which queue consumers subscribe
	// with ack:auto (see goStompServer).
	acksBroken bool
}

// goStompServer is the CONNECTED server header of go-stomp's server (v3.1.3), which cannot take
// ACKs: it never matches an ACK to a client-individual subscription's message (so it delivers one
// message per such subscription and then nothing), and an ACK on a client subscription makes it
// panic at the next delivery.
const goStompServer = "stompd/x.y.z"

// write sends p: one write on TCP, one text message on WebSocket.
func (c *benchConn) write(p []byte) error {
	_, err := c.stream.Write(p)
	return err
}

// close drops the connection without DISCONNECT: by the time a run closes its connections it has
// counted everything it needs.
func (c *benchConn) close() {
	_ = c.stream.Close()
}

// handshake sends CONNECT and waits for CONNECTED, adopting the version the broker chose.
func (c *benchConn) handshake(ctx context.Context, connect []byte) error {
	if err := c.write(connect); err != nil {
		return err
	}
	c.version = frame.V10 // a 1.0 broker names no version
	return c.await(ctx, func(f *frame.Frame) bool {
		if f.Command != frame.CONNECTED {
			return false
		}
		if s, ok := f.Get("version"); ok {
			if v, ok := frame.ParseVersion(string(s)); ok {
				c.version = v
			}
		}
		server, _ := f.Get("server")
		c.acksBroken = string(server) == goStompServer
		c.parser.SetVersion(c.version)
		return true
	})
}

// subscribe subscribes and returns once the subscription is in place. prefetch 0 sends no
// prefetch-count header.
//
// The SUBSCRIBE itself asks for no receipt, since not every broker answers one there (go-stomp's
// server never does). It is followed, in the same write, by a transaction begun and at once
// aborted, the ABORT asking for a receipt: every STOMP broker answers that, it names no
// destination that a broker could refuse or keep a message in, and a broker handles the frames of
// one connection in order, so its RECEIPT means the SUBSCRIBE has taken effect.
func (c *benchConn) subscribe(ctx context.Context, id int, dest, ack string, prefetch int) error {
	sid := strconv.Itoa(id)
	b := frame.AppendCommand(nil, frame.SUBSCRIBE)
	b = frame.AppendHeader(b, c.version, "id", sid)
	b = frame.AppendHeader(b, c.version, "destination", dest)
	b = frame.AppendHeader(b, c.version, "ack", ack)
	if prefetch > 0 {
		b = frame.AppendHeader(b, c.version, "prefetch-count", strconv.Itoa(prefetch))
	}
	b = frame.AppendBody(b, nil)
	syncID := "sub-" + sid // names both the transaction and the receipt
	b = frame.AppendCommand(b, frame.BEGIN)
	b = frame.AppendHeader(b, c.version, "transaction", syncID)
	b = frame.AppendBody(b, nil)
	b = frame.AppendCommand(b, frame.ABORT)
	b = frame.AppendHeader(b, c.version, "transaction", syncID)
	b = frame.AppendHeader(b, c.version, "receipt", syncID)
	b = frame.AppendBody(b, nil)
	if err := c.write(b); err != nil {
		return fmt.Errorf("subscribe %s: %w", dest, err)
	}
	err := c.await(ctx, func(f *frame.Frame) bool {
		got, _ := f.Get("receipt-id")
		return f.Command == frame.RECEIPT && string(got) == syncID
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", dest, err)
	}
	return nil
}

// await reads frames until done accepts one. An ERROR frame returns a *brokerError; ctx ending
// closes the connection and returns ctx's cause.
func (c *benchConn) await(ctx context.Context, done func(*frame.Frame) bool) error {
	stop := context.AfterFunc(ctx, c.close)
	var found bool
	emit := func(f *frame.Frame) error {
		switch {
		case f == nil:
			return nil
		case f.Command == frame.ERROR:
			return errorFrame(f)
		case done(f):
			found = true
			return nil
		}
		return fmt.Errorf("%w: %s", errUnexpectedFrame, f.Command)
	}
	var err error
	for !found && err == nil {
		var n int
		n, err = c.stream.Read(c.buf)
		if n > 0 {
			if ferr := c.parser.Feed(c.buf[:n], emit); ferr != nil {
				err = ferr
			}
		}
		if found {
			err = nil
		}
	}
	if !stop() {
		return context.Cause(ctx)
	}
	if errors.Is(err, io.EOF) {
		return errors.New("connection closed by the broker")
	}
	return err
}

// wsTextStream sends every write as one text message without checking it: bench frames are ASCII.
type wsTextStream struct{ *wsStream }

func (s wsTextStream) Write(p []byte) (int, error) {
	if err := s.conn.Write(context.Background(), websocket.MessageText, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
