package test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws/frame"
)

func TestSubprotocolNegotiation(t *testing.T) {
	ts := startServer(t)
	cases := []struct {
		offer []string
		want  string
	}{
		{[]string{"v10.stomp", "v12.stomp"}, "v12.stomp"},
		{[]string{"v11.stomp", "v10.stomp"}, "v11.stomp"},
		{[]string{"v10.stomp"}, "v10.stomp"},
		{nil, ""},
		{[]string{"mqtt"}, ""},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.offer, ","), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			c, _, err := websocket.Dial(ctx, ts.WSURL, &websocket.DialOptions{Subprotocols: tc.offer})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if got := c.Subprotocol(); got != tc.want {
				t.Fatalf("subprotocol %q, want %q", got, tc.want)
			}
			// Served either way; the version comes from accept-version.
			_ = c.Write(ctx, websocket.MessageText, []byte("CONNECT\naccept-version:1.1,1.2\n\n\x00"))
			_, p, err := c.Read(ctx)
			if err != nil || !bytes.HasPrefix(p, []byte("CONNECTED\n")) || !bytes.Contains(p, []byte("version:1.2\n")) {
				t.Fatalf("CONNECT answered %q, %v", p, err)
			}
		})
	}
	t.Run("plain GET", func(t *testing.T) {
		resp, err := http.Get(ts.HTTPURL + "/ws")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			t.Fatalf("plain GET /ws: %d, want 4xx", resp.StatusCode)
		}
	})
}

func TestVersionsAndHeaderEscaping(t *testing.T) {
	ts := startServer(t)
	// The value carries every character that needs escaping in some version.
	const value = "a:b\\c\nd\re"
	pub := ts.rawTCP(t)
	pub.connect("1.2")
	subs := map[string]*rawClient{}
	for _, v := range []string{"1.0", "1.1", "1.2"} {
		c := ts.rawWS(t)
		connected := c.connect(v)
		if got := connected.Get("version"); got != v {
			t.Fatalf("CONNECT accept-version:%s got version %q", v, got)
		}
		c.send("SUBSCRIBE\nid:s\ndestination:/topic/esc\nreceipt:r\n\n\x00")
		c.expect("RECEIPT")
		subs[v] = c
	}
	pub.send("SEND\ndestination:/topic/esc\nx-v:a\\cb\\\\c\\nd\\re\nreceipt:sent\n\nbody\x00")
	pub.expect("RECEIPT")
	want := map[string]string{
		"1.0": "a:b\\c d e", // 1.0 cannot carry CR or LF: they become spaces; no escaping
		"1.1": "a:b\\c\nd\re",
		"1.2": value,
	}
	for v, c := range subs {
		m := c.expect("MESSAGE")
		if got := m.Get("x-v"); got != want[v] {
			t.Errorf("STOMP %s subscriber got x-v %q, want %q", v, got, want[v])
		}
	}
	// CONNECT headers are never unescaped: a backslash in a 1.2 CONNECT login is literal, not an error.
	c := ts.rawTCP(t)
	c.connect("1.2", `login:dom\user`)
	// STOMP 1.0: no accept-version at all, and SUBSCRIBE without id.
	old := ts.rawTCP(t)
	old.send("CONNECT\n\n\x00")
	if v := old.expect("CONNECTED").Get("version"); v != "1.0" {
		t.Fatalf("CONNECT without accept-version negotiated %q, want 1.0", v)
	}
	old.send("SUBSCRIBE\ndestination:/topic/v10\nreceipt:r\n\n\x00")
	old.expect("RECEIPT")
	pub.send("SEND\ndestination:/topic/v10\n\nhello\x00")
	if m := old.expect("MESSAGE"); m.Get("subscription") != "/topic/v10" || string(m.Body) != "hello" {
		t.Fatalf("1.0 MESSAGE %s", m)
	}
}

func TestFramesSplitAcrossMessagesAndBatched(t *testing.T) {
	ts := startServer(t)
	c := ts.rawWS(t, "v12.stomp")
	connect := "CONNECT\r\naccept-version:1.2\r\nhost:/\r\n\r\n\x00"
	for i := 0; i < len(connect); i += 3 { // CONNECT in 3-byte messages, CRLF line endings
		c.send(connect[i:min(i+3, len(connect))])
	}
	c.expect("CONNECTED")
	// Several frames, heart-beat EOLs between them, text and binary messages, in one and in split messages.
	batch := "\n\nSUBSCRIBE\nid:1\ndestination:/topic/split\n\n\x00\n" +
		"SEND\ndestination:/topic/split\ncontent-length:5\n\nab\x00cd\x00\r\n" +
		"SEND\ndestination:/topic/split\n\nsecond\x00"
	c.sendBinary([]byte(batch[:20]))
	c.send(batch[20:])
	if m := c.expect("MESSAGE"); !bytes.Equal(m.Body, []byte("ab\x00cd")) {
		t.Fatalf("content-length body %q", m.Body)
	}
	if m := c.expect("MESSAGE"); string(m.Body) != "second" {
		t.Fatalf("second body %q", m.Body)
	}
}

func TestTextAndBinaryMessages(t *testing.T) {
	ts := startServer(t)
	c := ts.rawWS(t, "v12.stomp")
	c.connect("1.2")
	c.send("SUBSCRIBE\nid:1\ndestination:/topic/tb\nreceipt:r\n\n\x00")
	c.expect("RECEIPT")
	c.send("SEND\ndestination:/topic/tb\n\nplain text ✓\x00")
	c.expect("MESSAGE")
	c.sendBinary([]byte("SEND\ndestination:/topic/tb\ncontent-length:3\n\n\xff\x00\xfe\x00"))
	if m := c.expect("MESSAGE"); !bytes.Equal(m.Body, []byte{0xff, 0, 0xfe}) {
		t.Fatalf("binary body %q", m.Body)
	}
	c.mu.Lock()
	types := append([]websocket.MessageType(nil), c.msgTypes...)
	c.mu.Unlock()
	// CONNECTED, RECEIPT, text MESSAGE: text; the non-UTF-8 MESSAGE must be binary (RFC 6455 §5.6).
	want := []websocket.MessageType{websocket.MessageText, websocket.MessageText, websocket.MessageText, websocket.MessageBinary}
	if len(types) != len(want) {
		t.Fatalf("message types %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("message types %v, want %v", types, want)
		}
	}
}

func TestLargeBodyEveryByteValue(t *testing.T) {
	ts := startServer(t)
	body := make([]byte, 1<<20)
	for i := range body {
		body[i] = byte(i)
	}
	t.Run("go-stomp tcp", func(t *testing.T) {
		subscriber := ts.dialTCP(t)
		sub, _ := subscriber.Subscribe("/topic/big", stomp.AckAuto)
		waitFor(t, "subscription", func() bool { return ts.Broker.Stats().Subscriptions == 1 })
		if err := ts.dialTCP(t).Send("/topic/big", "application/octet-stream", body, stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, sub); !bytes.Equal(m.Body, body) {
			t.Fatalf("1 MiB body corrupted (got %d bytes)", len(m.Body))
		}
		_ = subscriber.Disconnect()
		waitFor(t, "unsubscribed", func() bool { return ts.Broker.Stats().Subscriptions == 0 })
	})
	t.Run("websocket binary, split in 16 KiB messages", func(t *testing.T) {
		c := ts.rawWS(t, "v12.stomp")
		c.connect("1.2")
		c.send("SUBSCRIBE\nid:1\ndestination:/topic/big\nreceipt:r\n\n\x00")
		c.expect("RECEIPT")
		f := frame.AppendFrame(nil, frame.V12, frame.SEND, []frame.Header{{Name: []byte("destination"), Value: []byte("/topic/big")}}, body)
		for i := 0; i < len(f); i += 16 << 10 {
			c.sendBinary(f[i:min(i+16<<10, len(f))])
		}
		if m := c.expect("MESSAGE"); !bytes.Equal(m.Body, body) || m.Get("content-length") != strconv.Itoa(len(body)) {
			t.Fatalf("1 MiB body corrupted (got %d bytes, content-length %s)", len(m.Body), m.Get("content-length"))
		}
	})
}

func TestTenThousandInOrderToTwoSubscribers(t *testing.T) {
	transports(t, func(t *testing.T, dial func(testing.TB, ...func(*stomp.Conn) error) *stomp.Conn, ts *testServer) {
		const n = 10000
		var subs []*stomp.Subscription
		for i := 0; i < 2; i++ {
			s, _ := dial(t).Subscribe("/topic/order", stomp.AckAuto)
			subs = append(subs, s)
		}
		waitFor(t, "subscriptions", func() bool { return ts.Broker.Stats().Subscriptions == 2 })
		pub := dial(t)
		done := make(chan error, 1)
		go func() {
			for i := 0; i < n; i++ {
				if err := pub.Send("/topic/order", "", []byte(strconv.Itoa(i))); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		for i := 0; i < n; i++ {
			for _, s := range subs {
				if got := string(recv(t, s).Body); got != strconv.Itoa(i) {
					t.Fatalf("message %d arrived as %q: out of order", i, got)
				}
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestHeartBeats(t *testing.T) {
	hb := func(c *serverConfig) {
		c.heartBeats = true
		c.opts.HeartBeatMin = 50 * time.Millisecond
	}
	t.Run("the server answers what the client asks", func(t *testing.T) {
		ts := startServer(t, hb, func(c *serverConfig) { c.opts.HeartBeatMax = 30 * time.Second })
		cases := []struct{ client, want string }{
			{"0,1000", "1000,0"},           // wants a beat every second (a short proxy idle timeout): gets one
			{"1000,0", "0,1000"},           // promises one every second: held to it
			{"10000,10000", "10000,10000"}, // STOMP.js's default
			{"0,0", "0,0"},                 // asks nothing, gets nothing
			{"0,10", "50,0"},               // faster than -heartbeat-min: clamped up
			{"0,120000", "30000,0"},        // slower than -heartbeat-max: the server beats more often
			{"120000,0", "0,120000"},       // a slow promise is not capped: the client is held to its own
		}
		for _, tc := range cases {
			c := ts.rawTCP(t)
			if got := c.connect("1.2", "heart-beat:"+tc.client).Get("heart-beat"); got != tc.want {
				t.Errorf("CONNECT heart-beat:%s got %q, want %q", tc.client, got, tc.want)
			}
		}
		// STOMP 1.0 has no heart-beats.
		c := ts.rawTCP(t)
		if got := c.connect("1.0", "heart-beat:0,1000").Get("heart-beat"); got != "0,0" {
			t.Errorf("STOMP 1.0 CONNECT got heart-beat %q, want 0,0", got)
		}
	})
	t.Run("server beats at the client's rate", func(t *testing.T) {
		ts := startServer(t, hb)
		c := ts.rawWS(t, "v12.stomp")
		start := time.Now()
		c.connect("1.2", "heart-beat:0,100")
		waitFor(t, "5 heart-beats", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.heartBeats >= 5
		})
		// Five beats 100 ms apart take half a second; at the old fixed 10 s they would take a minute.
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("5 heart-beats took %s at a requested 100 ms", d)
		}
	})
	t.Run("silent client is closed with ERROR", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		ts := startServer(t, hb, func(c *serverConfig) { c.opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: "test"}) })
		for _, tr := range []string{"tcp", "ws"} {
			c := ts.rawOver(t, tr)
			start := time.Now() // the server's clock for the silence starts after this
			connected := c.connect("1.2", "heart-beat:100,0")
			if got := connected.Get("heart-beat"); got != "0,100" {
				t.Fatalf("%s: CONNECTED heart-beat %q, want 0,100", tr, got)
			}
			c.expectError("heart-beat timeout")
			// Promised every 100 ms: closed after the 2 × 100 ms grace, not after a server default.
			if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
				t.Fatalf("%s: closed after %s: the grace is 2 × 100ms", tr, d)
			}
			waitFor(t, "the close to be counted", func() bool {
				return metricValue(t, reg, "stompd_connections_closed_total", "transport", tr, "reason", "heartbeat_timeout") == 1
			})
		}
		if got := metricValue(t, reg, "stompd_heartbeat_timeouts_total"); got != 2 {
			t.Errorf("stompd_heartbeat_timeouts_total = %v, want 2", got)
		}
	})
	t.Run("client beats keep it alive", func(t *testing.T) {
		ts := startServer(t, hb)
		c := ts.dialTCP(t, stomp.ConnOpt.HeartBeat(100*time.Millisecond, 100*time.Millisecond))
		sub, _ := c.Subscribe("/topic/hb", stomp.AckAuto)
		time.Sleep(time.Second) // ten intervals: go-stomp's beats must count as liveness
		if err := ts.dialTCP(t).Send("/topic/hb", "", []byte("still here"), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
		if m := recv(t, sub); string(m.Body) != "still here" {
			t.Fatalf("got %q", m.Body)
		}
	})
	t.Run("a direction the server declines", func(t *testing.T) {
		ts := startServer(t, hb, func(c *serverConfig) { c.opts.NoHeartBeatSend = true })
		if got := ts.rawTCP(t).connect("1.2", "heart-beat:1000,1000").Get("heart-beat"); got != "0,1000" {
			t.Fatalf("CONNECTED heart-beat %q, want 0,1000", got)
		}
	})
}

func TestTempQueueRequestReply(t *testing.T) {
	ts := startServer(t)
	server := ts.dialTCP(t)
	requests, _ := server.Subscribe("/queue/rpc", stomp.AckAuto)
	waitFor(t, "rpc server", func() bool { return ts.Broker.Stats().Subscriptions == 1 })

	client := ts.rawWS(t, "v12.stomp")
	client.connect("1.2")
	client.send("SEND\ndestination:/queue/rpc\nreply-to:/temp-queue/answers\nreceipt:r\n\nquestion\x00")
	client.expect("RECEIPT")
	req := recv(t, requests)
	replyTo := req.Header.Get("reply-to")
	if !strings.HasPrefix(replyTo, "/reply-queue/") {
		t.Fatalf("reply-to rewritten to %q, want a /reply-queue/ destination", replyTo)
	}
	if err := server.Send(replyTo, "", []byte("answer")); err != nil {
		t.Fatal(err)
	}
	m := client.expect("MESSAGE")
	if string(m.Body) != "answer" || m.Get("subscription") != "/temp-queue/answers" {
		t.Fatalf("reply %s", m)
	}
	// Gone with the session: a late reply is dropped, and does not break the replier.
	client.send("DISCONNECT\nreceipt:bye\n\n\x00")
	client.expect("RECEIPT")
	waitFor(t, "reply queue deleted", func() bool { _, _, ok := ts.Broker.QueueDepth(replyTo); return !ok })
	if err := server.Send(replyTo, "", []byte("late"), stomp.SendOpt.Receipt); err != nil {
		t.Fatalf("reply to a gone temp queue: %v", err)
	}
}

// TestSendCannotForgeServerHeaders: the headers a MESSAGE's receiver relies on to identify, acknowledge
// and judge it are the server's alone. A SEND carrying its own message-id, subscription, ack or
// redelivered (a forged redelivered:true would make consumers treat a first delivery as a retry), or
// the transaction and receipt meant for the server, must not see them forwarded; other headers are.
func TestSendCannotForgeServerHeaders(t *testing.T) {
	ts := startServer(t)
	forged := "message-id:forged-id\nsubscription:forged-sub\nack:forged-ack\nredelivered:true\nx-app:kept\n"
	cases := []struct {
		name, dest, subscribe string
	}{
		{name: "topic", dest: "/topic/forge", subscribe: "ack:auto"},
		{name: "queue, client ack", dest: "/queue/forge", subscribe: "ack:client-individual"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := ts.rawTCP(t)
			sub.connect("1.2")
			sub.send("SUBSCRIBE\nid:real-sub\ndestination:" + tc.dest + "\n" + tc.subscribe + "\nreceipt:s\n\n\x00")
			sub.expect("RECEIPT")
			pub := ts.rawWS(t, "v12.stomp")
			pub.connect("1.2")
			// Once directly with a receipt, once inside a committed transaction.
			pub.send("SEND\ndestination:" + tc.dest + "\nreceipt:forged-receipt\n" + forged + "\nplain\x00")
			pub.expect("RECEIPT")
			pub.send("BEGIN\ntransaction:tx\n\n\x00SEND\ndestination:" + tc.dest + "\ntransaction:tx\n" + forged + "\ntransacted\x00COMMIT\ntransaction:tx\nreceipt:c\n\n\x00")
			pub.expect("RECEIPT")
			var ackIDs []string
			for _, body := range []string{"plain", "transacted"} {
				m := sub.expect("MESSAGE")
				if string(m.Body) != body {
					t.Fatalf("got %s, want body %q", m, body)
				}
				count := map[string]int{}
				for _, h := range m.Headers {
					count[h[0]]++
				}
				for _, name := range []string{"message-id", "subscription", "destination"} {
					if count[name] != 1 {
						t.Errorf("%s: %d %s headers, want the server's one (%s)", body, count[name], name, m)
					}
				}
				for _, name := range []string{"redelivered", "transaction", "receipt"} {
					if count[name] != 0 {
						t.Errorf("%s: the SEND's %s header was forwarded (%s)", body, name, m)
					}
				}
				if got := m.Get("subscription"); got != "real-sub" {
					t.Errorf("%s: subscription %q, want real-sub", body, got)
				}
				if got := m.Get("message-id"); got == "forged-id" {
					t.Errorf("%s: message-id is the sender's", body)
				}
				if got := m.Get("x-app"); got != "kept" {
					t.Errorf("%s: x-app %q, want the SEND's other headers forwarded", body, got)
				}
				ack := m.Get("ack")
				switch {
				case tc.subscribe == "ack:auto" && count["ack"] != 0:
					t.Errorf("%s: an auto-ack MESSAGE carries ack %q", body, ack)
				case tc.subscribe != "ack:auto" && (count["ack"] != 1 || ack == "forged-ack"):
					t.Errorf("%s: %d ack headers, first %q; want the server's one", body, count["ack"], ack)
				}
				ackIDs = append(ackIDs, ack)
			}
			if tc.subscribe != "ack:auto" {
				// The server's ack ids are the ones that work.
				for _, id := range ackIDs {
					sub.send("ACK\nid:" + id + "\nreceipt:a\n\n\x00")
					sub.expect("RECEIPT")
				}
				if ready, unacked, _ := ts.Broker.QueueDepth(tc.dest); ready != 0 || unacked != 0 {
					t.Errorf("queue holds %d ready, %d unacked after both ACKs", ready, unacked)
				}
			}
		})
	}
}

// TestCompressionNeverNegotiated: a client offering permessage-deflate (browsers always do) gets no
// extension and plain frames, and a compressed frame sent anyway is refused, not inflated: a small
// frame cannot make the server hold a large message.
func TestCompressionNeverNegotiated(t *testing.T) {
	ts := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	// A library client that asks for compression still talks STOMP, uncompressed.
	c, resp, err := websocket.Dial(ctx, ts.WSURL, &websocket.DialOptions{
		Subprotocols:    []string{"v12.stomp"},
		CompressionMode: websocket.CompressionContextTakeover,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("server accepted extensions %q", ext)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("CONNECT\naccept-version:1.2\n\n\x00")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || !bytes.HasPrefix(p, []byte("CONNECTED\n")) {
		t.Fatalf("CONNECT over a connection that offered compression: %q, %v", p, err)
	}

	// By hand: the offer as a browser makes it, then a frame with RSV1 (compressed) set regardless.
	nc, err := net.DialTimeout("tcp", strings.TrimPrefix(ts.HTTPURL, "http://"), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(waitTimeout))
	_, _ = io.WriteString(nc, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v12.stomp\r\n"+
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
	br := bufio.NewReader(nc)
	hs, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hs.StatusCode != http.StatusSwitchingProtocols || hs.Header.Get("Sec-WebSocket-Extensions") != "" {
		t.Fatalf("handshake %s with extensions %q, want 101 with none", hs.Status, hs.Header.Get("Sec-WebSocket-Extensions"))
	}
	// "CONNECT…" deflated would be a different byte string; any payload will do, the RSV1 bit is the point.
	payload := []byte("CONNECT\naccept-version:1.2\n\n\x00")
	mask := [4]byte{1, 2, 3, 4}
	wire := []byte{0x80 | 0x40 | 0x1, 0x80 | byte(len(payload))} // FIN, RSV1, text; masked, length
	wire = append(wire, mask[:]...)
	for i, b := range payload {
		wire = append(wire, b^mask[i%4])
	}
	if _, err := nc.Write(wire); err != nil {
		t.Fatal(err)
	}
	// The server answers with a close frame, 1002 protocol error, and nothing STOMP.
	rest, _ := io.ReadAll(br)
	if len(rest) < 4 || rest[0] != 0x88 || int(rest[2])<<8|int(rest[3]) != int(websocket.StatusProtocolError) {
		t.Fatalf("after a compressed frame the server sent %q, want a close frame with 1002", rest)
	}
}

// TestHeartBeatFlag: the binary follows the client by default, and -heartbeat 0,… declines the
// server's own beats while still checking the client's.
func TestHeartBeatFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "1000,2000"},
		{[]string{"-heartbeat", "0,10000"}, "0,2000"},
	} {
		stompAddr := freeLoopbackAddr(t)
		p := startStompd(t, append([]string{"-stocks=false", "-chat=false", "-stomp-addr", stompAddr}, tc.args...)...)
		c := p.clients(stompAddr).rawTCP(t)
		if got := c.connect("1.2", "heart-beat:2000,1000").Get("heart-beat"); got != tc.want {
			t.Errorf("stompd %v: CONNECT heart-beat:2000,1000 got %q, want %q", tc.args, got, tc.want)
		}
		p.Stop()
	}
}
