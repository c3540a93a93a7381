package test

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws"
	"github.com/stompd/stompd/stompws/frame"
)

// assertHealthy checks that an established session still publishes and receives.
func assertHealthy(t *testing.T, c *stomp.Conn, dest string) {
	t.Helper()
	sub, err := c.Subscribe(dest, stomp.AckAuto)
	if err != nil {
		t.Fatalf("bystander subscribe: %v", err)
	}
	if err := c.Send(dest, "text/plain", []byte("alive"), stomp.SendOpt.Receipt); err != nil {
		t.Fatalf("bystander send: %v", err)
	}
	if m := recv(t, sub); string(m.Body) != "alive" {
		t.Fatalf("bystander got %q, want alive", m.Body)
	}
}

// dialWSRefused attempts a WebSocket upgrade that a limit must refuse, and returns the HTTP status and
// Retry-After header of the refusal.
func dialWSRefused(t *testing.T, url string) (status int, retryAfter string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
	if err == nil {
		c.CloseNow()
		t.Fatal("WebSocket upgrade accepted, want it refused")
	}
	if resp == nil {
		t.Fatalf("WebSocket upgrade failed without a response: %v", err)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func TestConnectTimeout(t *testing.T) {
	// Long enough for the bystander's CONNECT, which follows its dial at once, on a loaded machine.
	const timeout = 2 * time.Second
	ts := startServer(t, func(c *serverConfig) { c.opts.ConnectTimeout = timeout })
	bystander := ts.dialTCP(t)
	for _, tr := range []string{"tcp", "ws"} {
		t.Run(tr, func(t *testing.T) {
			silent := ts.rawTCP
			if tr == "ws" {
				silent = func(t testing.TB) *rawClient { return ts.rawWS(t, "v12.stomp") }
			}
			silent(t).expectError("connect timeout")
			assertHealthy(t, bystander, "/topic/limits.connect")
		})
	}
	t.Run("CONNECT in time disarms it", func(t *testing.T) {
		rc := ts.rawTCP(t)
		rc.connect("1.2")
		time.Sleep(timeout + timeout/2) // past the deadline: the session must still serve
		rc.send("SUBSCRIBE\nid:0\ndestination:/topic/limits.late\nreceipt:r1\n\n\x00")
		if got := rc.expect("RECEIPT").Get("receipt-id"); got != "r1" {
			t.Fatalf("receipt-id %q, want r1", got)
		}
	})
}

func TestConnectionLimits(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*stompws.Options)
		message   string
	}{
		{"total", func(o *stompws.Options) { o.MaxConnections = 2 }, "too many connections"},
		{"per IP", func(o *stompws.Options) { o.MaxConnectionsPerIP = 2 }, "too many connections from this address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, func(c *serverConfig) { tt.configure(&c.opts) })
			bystander := ts.dialWS(t)
			second := ts.rawTCP(t)
			second.connect("1.2")

			ts.rawTCP(t).expectError(tt.message)
			status, retryAfter := dialWSRefused(t, ts.WSURL)
			if status != http.StatusServiceUnavailable || retryAfter != "5" {
				t.Fatalf("refused upgrade: status %d, Retry-After %q; want 503 and 5", status, retryAfter)
			}
			assertHealthy(t, bystander, "/topic/limits.conns")

			// A slot frees when a connection ends.
			second.send("DISCONNECT\n\n\x00")
			second.expectClosed()
			waitFor(t, "a freed connection slot", func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				c, _, err := websocket.Dial(ctx, ts.WSURL, &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
				if err != nil {
					return false
				}
				c.CloseNow()
				return true
			})
		})
	}
}

func TestAcceptRate(t *testing.T) {
	// One token, refilled after 1000s: the bystander takes it and every later connection is refused.
	reg := prometheus.NewRegistry()
	ts := startServer(t, func(c *serverConfig) {
		c.opts.AcceptRate, c.opts.AcceptBurst = 0.001, 1
		c.opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: "test"})
	})
	bystander := ts.dialTCP(t)

	t.Run("ws", func(t *testing.T) {
		status, retryAfter := dialWSRefused(t, ts.WSURL)
		if status != http.StatusServiceUnavailable {
			t.Fatalf("refused upgrade: status %d, want 503", status)
		}
		if secs, err := strconv.Atoi(retryAfter); err != nil || secs < 900 || secs > 1000 {
			t.Fatalf("Retry-After %q, want the seconds until the next token (about 1000)", retryAfter)
		}
	})
	t.Run("tcp", func(t *testing.T) {
		ts.rawTCP(t).expectError("connection rate exceeded")
	})
	assertHealthy(t, bystander, "/topic/limits.accept")
	if got := metricValue(t, reg, "stompd_handshake_failures_total", "reason", "limit"); got != 2 {
		t.Errorf("handshake_failures{reason=limit} = %v, want 2", got)
	}
}

func TestSendRate(t *testing.T) {
	for _, tr := range []string{"tcp", "ws"} {
		t.Run(tr, func(t *testing.T) {
			// Two SENDs at once, then one every 1000s: the third is over the rate.
			reg := prometheus.NewRegistry()
			ts := startServer(t, func(c *serverConfig) {
				c.opts.SendRate, c.opts.SendBurst = 0.001, 2
				c.opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: "test"})
			})
			bystander := ts.dialTCP(t)
			sub, err := bystander.Subscribe("/topic/limits.send", stomp.AckAuto)
			if err != nil {
				t.Fatal(err)
			}
			rc := ts.rawOver(t, tr)
			rc.connect("1.2")
			for i := range 2 {
				receipt := "r" + strconv.Itoa(i)
				rc.send("SEND\ndestination:/topic/limits.send\nreceipt:" + receipt + "\n\nhello\x00")
				if got := rc.expect("RECEIPT").Get("receipt-id"); got != receipt {
					t.Fatalf("receipt-id %q, want %s", got, receipt)
				}
				if m := recv(t, sub); string(m.Body) != "hello" {
					t.Fatalf("bystander got %q, want hello", m.Body)
				}
			}
			rc.send("SEND\ndestination:/topic/limits.send\nreceipt:over\n\ntoo fast\x00")
			if got := rc.expectError("rate limit exceeded").Get("receipt-id"); got != "over" {
				t.Fatalf("ERROR receipt-id %q, want over", got)
			}
			assertHealthy(t, bystander, "/topic/limits.send.after")
			if got := metricValue(t, reg, "stompd_errors_sent_total", "reason", "rate_limited"); got != 1 {
				t.Errorf("errors_sent{reason=rate_limited} = %v, want 1", got)
			}
		})
	}
}

func TestSendBytesRate(t *testing.T) {
	for _, tr := range []string{"tcp", "ws"} {
		t.Run(tr, func(t *testing.T) {
			// 1,000 body bytes at once, then one byte every 1000 s: the second 600-byte SEND is over.
			ts := startServer(t, func(c *serverConfig) {
				c.opts.Limits.MaxFrameBytes = 1000
				c.opts.SendBytesRate, c.opts.SendBytesBurst = 0.001, 1000
			})
			bystander := ts.dialTCP(t)
			rc := ts.rawOver(t, tr)
			rc.connect("1.2")
			body := strings.Repeat("b", 600)
			rc.send("SEND\ndestination:/topic/limits.bytes\nreceipt:first\n\n" + body + "\x00")
			rc.expect("RECEIPT")
			rc.send("SEND\ndestination:/topic/limits.bytes\nreceipt:second\n\n" + body + "\x00")
			if got := rc.expectError("rate limit exceeded").Get("receipt-id"); got != "second" {
				t.Fatalf("ERROR receipt-id %q, want second", got)
			}
			rc.expectClosed()
			assertHealthy(t, bystander, "/topic/limits.bytes.after")
		})
	}
}

func TestMaxUnackedPerSession(t *testing.T) {
	for _, tr := range []string{"tcp", "ws"} {
		t.Run(tr, func(t *testing.T) {
			ts := startServer(t, func(c *serverConfig) { c.opts.MaxUnacked = 2 })
			producer := ts.dialTCP(t)
			rc := ts.rawOver(t, tr)
			rc.connect("1.2")
			rc.send("SUBSCRIBE\nid:a\ndestination:/queue/unacked.a\nack:client-individual\n\n\x00")
			rc.send("SUBSCRIBE\nid:b\ndestination:/queue/unacked.b\nack:client-individual\nreceipt:subscribed\n\n\x00")
			rc.expect("RECEIPT")
			for _, dest := range []string{"/queue/unacked.a", "/queue/unacked.a", "/queue/unacked.b"} {
				if err := producer.Send(dest, "text/plain", []byte(dest), stomp.SendOpt.Receipt); err != nil {
					t.Fatal(err)
				}
			}
			// Two messages fill the session's allowance; /queue/unacked.b's waits in its queue.
			first, second := rc.expect("MESSAGE"), rc.expect("MESSAGE")
			rc.send("SEND\ndestination:/topic/unacked.sync\nreceipt:sync\n\n\x00")
			rc.expect("RECEIPT")
			if ready, _, _ := ts.Broker.QueueDepth("/queue/unacked.b"); ready != 1 {
				t.Fatalf("/queue/unacked.b has %d ready, want its message held back", ready)
			}
			rc.send("ACK\nid:" + first.Get("ack") + "\n\n\x00")
			if got := rc.expect("MESSAGE").Get("destination"); got != "/queue/unacked.b" {
				t.Fatalf("after one ACK got a message from %s, want /queue/unacked.b", got)
			}
			rc.send("ACK\nid:" + second.Get("ack") + "\nreceipt:done\n\n\x00")
			rc.expect("RECEIPT")
		})
	}
}

// TestQueueByteLimitFlood: the flood, scaled down. One client sends 1 MiB messages, each with
// a receipt, to a queue nobody consumes, on the binary run with -max-queue-bytes 8MiB: it is refused
// with an ERROR naming the queue and its limit once the queue holds 8 MiB, every message it was given
// a RECEIPT for is still there and is delivered, and another client is served all along.
func TestQueueByteLimitFlood(t *testing.T) {
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-max-queue-bytes", "8MiB")
	ts := p.clients(stompAddr)
	flooder := ts.rawTCP(t)
	flooder.connect("1.2")
	body := strings.Repeat("f", 1<<20)
	receipted := 0
	for i := range 50 {
		flooder.send("SEND\ndestination:/queue/flood\nreceipt:" + strconv.Itoa(i) + "\n\n" + body + "\x00")
		f := flooder.next()
		if f.Command == "RECEIPT" {
			receipted++
			continue
		}
		if f.Command != "ERROR" || f.Get("message") != `queue "/queue/flood" is full (8388608 bytes)` || f.Get("receipt-id") != strconv.Itoa(i) {
			t.Fatalf("SEND %d got %s", i, f)
		}
		break
	}
	// Each message holds 1 MiB of body and 11 bytes of destination: seven fit in 8 MiB, the eighth not.
	if receipted != 7 {
		t.Fatalf("%d SENDs receipted before the refusal, want 7", receipted)
	}
	bystander := ts.dialTCP(t)
	sub, err := bystander.Subscribe("/queue/flood", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	for range receipted {
		if m := recv(t, sub); len(m.Body) != len(body) {
			t.Fatalf("a receipted message came back with %d bytes", len(m.Body))
		}
	}
	noMessage(t, sub, 100*time.Millisecond)
}

// TestMaxDestinations: a flood of new queues stops at the destination bound with an ERROR naming it
// (and the frame's receipt), WebSocket close 1013, counted by reason; destinations that exist keep
// working for everyone.
func TestMaxDestinations(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := startServer(t, func(c *serverConfig) {
		c.bopts.MaxDestinations = 3
		c.opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: "test"})
	})
	flood := ts.rawWS(t, "v12.stomp")
	flood.connect("1.2")
	for i := range 3 {
		flood.send("SEND\ndestination:/queue/q" + strconv.Itoa(i) + "\nreceipt:r" + strconv.Itoa(i) + "\n\nx\x00")
		flood.expect("RECEIPT")
	}
	flood.send("SEND\ndestination:/queue/q3\nreceipt:r3\n\nx\x00")
	if f := flood.expectError("too many destinations (limit 3)"); f.Get("receipt-id") != "r3" {
		t.Fatalf("ERROR without the SEND's receipt-id: %s", f)
	}
	if code, _ := flood.closeInfo(); code != websocket.StatusTryAgainLater {
		t.Errorf("WebSocket closed with %d, want 1013", code)
	}
	sub := ts.rawTCP(t)
	sub.connect("1.2")
	sub.send("SUBSCRIBE\nid:s\ndestination:/queue/other\nreceipt:s\n\n\x00")
	sub.expectError("too many destinations (limit 3)")
	if got := metricValue(t, reg, "stompd_errors_sent_total", "reason", "too_many_destinations"); got != 2 {
		t.Errorf("stompd_errors_sent_total{reason=too_many_destinations} = %v, want 2", got)
	}
	// The queues that exist still take messages and serve them.
	c := ts.dialTCP(t)
	qs, err := c.Subscribe("/queue/q0", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	if m := recv(t, qs); string(m.Body) != "x" {
		t.Fatalf("got %q from /queue/q0", m.Body)
	}
	if err := c.Send("/queue/q0", "", []byte("again"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, qs); string(m.Body) != "again" {
		t.Fatalf("got %q", m.Body)
	}
}

// TestMaxDestinationsPerConnection: one connection's new queues, temporary reply queues included,
// stop at its own bound with an ERROR naming it, while other connections go on creating and using
// destinations.
func TestMaxDestinationsPerConnection(t *testing.T) {
	ts := startServer(t, func(c *serverConfig) { c.opts.MaxDestinationsPerSession = 2 })
	for _, tr := range []string{"tcp", "ws"} {
		c := ts.rawOver(t, tr)
		c.connect("1.2")
		// A request with a reply-to creates the queue and the connection's reply queue.
		c.send("SEND\ndestination:/queue/" + tr + ".1\nreply-to:/temp-queue/answers\nreceipt:r1\n\nx\x00")
		c.expect("RECEIPT")
		c.send("SEND\ndestination:/queue/" + tr + ".1\nreceipt:r2\n\nexisting queues cost nothing\x00")
		c.expect("RECEIPT")
		c.send("SEND\ndestination:/queue/" + tr + ".2\nreceipt:r3\n\nx\x00")
		if f := c.expectError("too many destinations created by this connection (limit 2)"); f.Get("receipt-id") != "r3" {
			t.Fatalf("%s: ERROR without the receipt-id: %s", tr, f)
		}
	}
	other := ts.dialTCP(t)
	for _, dest := range []string{"/queue/other.1", "/queue/other.2", "/queue/tcp.1"} {
		if err := other.Send(dest, "", []byte("y"), stomp.SendOpt.Receipt); err != nil {
			t.Fatalf("another connection's SEND to %s: %v", dest, err)
		}
	}
	if ready, _, _ := ts.Broker.QueueDepth("/queue/tcp.1"); ready != 3 {
		t.Fatalf("/queue/tcp.1 holds %d messages, want 3", ready)
	}
}

// TestMaxMemorySetsTheRuntimeLimit: the binary hands -max-memory to the Go runtime, as its own
// go_gc_gomemlimit_bytes shows; auto sets a limit too, and 0 sets none.
func TestMaxMemorySetsTheRuntimeLimit(t *testing.T) {
	for _, tc := range []struct {
		flag  string
		check func(limit float64) bool
	}{
		{"256MiB", func(limit float64) bool { return limit == 256<<20 }},
		{"auto", func(limit float64) bool { return limit > 0 && limit < math.MaxInt64 }},
		{"0", func(limit float64) bool { return limit == math.MaxInt64 }},
	} {
		p := startStompd(t, "-stocks=false", "-chat=false", "-max-memory", tc.flag)
		limit := scrapeValue(t, p.URL()+"/metrics", "go_gc_gomemlimit_bytes")
		if !tc.check(limit) {
			t.Errorf("-max-memory %s: go_gc_gomemlimit_bytes %v", tc.flag, limit)
		}
		p.Stop()
	}
}

// TestTransactionByteLimit: the SENDs a connection holds in open transactions until COMMIT are bounded
// in bytes (-max-tx-bytes) as well as in frames: past the bound the SEND gets ERROR "transaction too
// large" and nothing of the transaction is published. COMMIT and the end of the session give the bytes
// back, and Server.TransactionBytes (stompd_memory_held_bytes{kind="transactions"}) follows them.
func TestTransactionByteLimit(t *testing.T) {
	ts := startServer(t, func(c *serverConfig) { c.opts.MaxTxBytes = 1 << 20 })
	body := strings.Repeat("t", 400<<10)
	for _, tr := range []string{"tcp", "ws"} {
		t.Run(tr, func(t *testing.T) {
			rc := ts.rawOver(t, tr)
			rc.connect("1.2")
			rc.send("BEGIN\ntransaction:ok\n\n\x00")
			for range 2 {
				rc.send("SEND\ndestination:/queue/tx." + tr + "\ntransaction:ok\n\n" + body + "\x00")
			}
			rc.send("COMMIT\ntransaction:ok\nreceipt:c\n\n\x00")
			rc.expect(frame.RECEIPT)
			if ready, _, _ := ts.Broker.QueueDepth("/queue/tx." + tr); ready != 2 {
				t.Fatalf("%d messages after COMMIT, want 2", ready)
			}
			rc.send("BEGIN\ntransaction:big\n\n\x00")
			for range 2 {
				rc.send("SEND\ndestination:/queue/tx." + tr + "\ntransaction:big\n\n" + body + "\x00")
			}
			rc.subscribe("/topic/tx")
			if held := ts.Server.TransactionBytes(); held < 800<<10 || held > 801<<10 {
				t.Errorf("TransactionBytes = %d with two 400 KiB SENDs held", held)
			}
			rc.send("SEND\ndestination:/queue/tx." + tr + "\ntransaction:big\n\n" + body + "\x00")
			f := rc.expectError("transaction too large")
			if !strings.Contains(string(f.Body), "max-tx-bytes") {
				t.Errorf("ERROR body %q does not name the bound", f.Body)
			}
			waitFor(t, "the transaction's bytes to be given back", func() bool { return ts.Server.TransactionBytes() == 0 })
			if ready, _, _ := ts.Broker.QueueDepth("/queue/tx." + tr); ready != 2 {
				t.Errorf("%d messages after the refused transaction, want the 2 committed before", ready)
			}
		})
	}
}
