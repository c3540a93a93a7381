package test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/broker/chat"
	"github.com/stompd/stompd/broker/stocks"
)

// withPublishers runs the built-in stock feed (ticking fast) and chat room on the test server.
func withPublishers(t testing.TB) func(*serverConfig) {
	return func(c *serverConfig) {
		c.bopts.Policies = append(append(c.bopts.Policies, stocks.Policies("")...), chat.Policies(chat.Options{})...)
		c.onStart = append(c.onStart, func(b *broker.Broker) {
			room := chat.New(b, chat.Options{})
			feed := stocks.New(b, stocks.Options{MinInterval: 20 * time.Millisecond, MaxInterval: 40 * time.Millisecond})
			feed.Start()
			t.Cleanup(func() { feed.Stop(); room.Close() })
		})
	}
}

func TestStockFeedOverStomp(t *testing.T) {
	ts := startServer(t, withPublishers(t))
	c := ts.dialWS(t)
	sub, err := c.Subscribe("/topic/stocks.*", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	// The feed keeps ticking after the checks; an undrained go-stomp subscription would block the
	// client's connection, and its Disconnect at cleanup, for good.
	defer func() { go drain(sub) }()
	seen := map[string]bool{}
	retained := 0
	for len(seen) < 5 || retained < 5 {
		m := recv(t, sub)
		if m.Header.Get("retained") == "true" {
			retained++
		}
		var q stocks.Quote
		if err := json.Unmarshal(m.Body, &q); err != nil || m.ContentType != "application/json" {
			t.Fatalf("quote %q (%s): %v", m.Body, m.ContentType, err)
		}
		seen[q.Symbol] = true
	}
	// Only the server publishes prices.
	rc := ts.rawTCP(t)
	rc.connect("1.2")
	rc.send("SEND\ndestination:/topic/stocks.AAPL\nreceipt:r\n\n{\"price\":0}\x00")
	if f := rc.expectError("destination is read-only"); f.Get("receipt-id") != "r" {
		t.Fatalf("ERROR %s", f)
	}
}

func TestChatRoomOverStomp(t *testing.T) {
	ts := startServer(t, withPublishers(t))
	alice := ts.dialTCP(t, stomp.ConnOpt.Header("name", "Alice"))
	aliceSub, _ := alice.Subscribe("/topic/chat", stomp.AckAuto)
	next := func(sub *stomp.Subscription, typ string) (chat.Event, *stomp.Message) {
		t.Helper()
		for {
			m := recv(t, sub)
			var e chat.Event
			if err := json.Unmarshal(m.Body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Type == typ {
				return e, m
			}
		}
	}
	next(aliceSub, "members")

	bob := ts.dialWS(t, stomp.ConnOpt.Login("bob", ""))
	bobSub, _ := bob.Subscribe("/topic/chat", stomp.AckAuto)
	if e, _ := next(bobSub, "members"); len(e.Members) != 2 {
		t.Fatalf("Bob's member list %+v", e.Members)
	}
	if e, _ := next(aliceSub, "join"); e.Name != "bob" || e.From != bob.Session() {
		t.Fatalf("Alice saw join %+v; want bob's login as his name and his session id %s", e, bob.Session())
	}
	if err := bob.Send("/app/chat", "text/plain", []byte("<img src=x onerror=alert(1)>"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	e, _ := next(aliceSub, "message")
	if e.Text != "<img src=x onerror=alert(1)>" || e.Name != "bob" || e.From != bob.Session() {
		t.Fatalf("message %+v", e)
	}

	// A newcomer gets the history, marked as such.
	carol := ts.dialTCP(t)
	carolSub, _ := carol.Subscribe("/topic/chat", stomp.AckAuto)
	defer func() { go drain(aliceSub); go drain(carolSub) }()
	first := recv(t, carolSub)
	if first.Header.Get("history") != "true" {
		t.Fatalf("newcomer's first message %q lacks history:true", first.Body)
	}
	if _, m := next(carolSub, "message"); m.Header.Get("history") != "true" {
		t.Fatal("Bob's earlier message reached the newcomer without history:true")
	}

	// Bad input: empty text, a direct SEND to the room's topic, subscribing to the app destination.
	rc := ts.rawWS(t, "v12.stomp")
	rc.connect("1.2", "name:Mallory")
	rc.send("SEND\ndestination:/app/chat\n\n   \x00")
	rc.expectError("invalid chat message: text is empty")
	for input, want := range map[string]string{
		"SEND\ndestination:/topic/chat\n\n{\"type\":\"message\",\"text\":\"forged\"}\x00": "destination is read-only",
		"SUBSCRIBE\nid:1\ndestination:/app/chat\n\n\x00":                                  "invalid destination",
		"SEND\ndestination:/app/nowhere\n\nx\x00":                                         "unknown destination",
	} {
		rc := ts.rawTCP(t)
		rc.connect("1.2")
		rc.send(input)
		rc.expectError(want)
	}

	// Bob leaves: Alice sees it.
	_ = bob.Disconnect()
	if e, _ := next(aliceSub, "leave"); e.Name != "bob" {
		t.Fatalf("leave %+v", e)
	}
}

// TestBuiltInPoliciesWinOverConfigFile: a config file that declares the built-in publishers' topics
// writable, without a last value or history, changes nothing for them (their policies come first), while
// its policies do apply to every other destination.
func TestBuiltInPoliciesWinOverConfigFile(t *testing.T) {
	config := filepath.Join(t.TempDir(), "stompd.yaml")
	err := os.WriteFile(config, []byte(`policies:
  - pattern: /topic/stocks.#
    read-only: false
    last-value: false
  - pattern: /topic/chat
    read-only: false
    history: 0
  - pattern: /topic/own.#
    read-only: true
  - pattern: "#"
    read-only: false
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-config", config, "-stomp-addr", stompAddr)
	ts := p.clients(stompAddr)

	for _, dest := range []string{"/topic/stocks", "/topic/stocks.AAPL", "/topic/chat", "/topic/own.x"} {
		for _, tr := range []string{"tcp", "ws"} {
			c := ts.rawOver(t, tr)
			c.connect("1.2")
			c.send("SEND\ndestination:" + dest + "\nreceipt:r\n\nforged\x00")
			if f := c.expectError("destination is read-only"); f.Get("receipt-id") != "r" {
				t.Errorf("%s over %s: ERROR without the SEND's receipt-id: %s", dest, tr, f)
			}
		}
	}
	// The feed's last value and the room's history are still kept: a newcomer gets them at once.
	c := ts.rawWS(t, "v12.stomp")
	c.connect("1.2")
	c.send("SUBSCRIBE\nid:s\ndestination:/topic/stocks.AAPL\n\n\x00")
	if m := c.expect("MESSAGE"); m.Get("retained") != "true" {
		t.Errorf("first stock message %s, want the retained last value", m)
	}
	c.send("SEND\ndestination:/app/chat\nreceipt:said\n\n{\"type\":\"message\",\"text\":\"hello\"}\x00")
	c.expect("RECEIPT")
	late := ts.rawTCP(t)
	late.connect("1.2")
	late.send("SUBSCRIBE\nid:c\ndestination:/topic/chat\n\n\x00")
	for {
		m := late.expect("MESSAGE")
		if m.Get("history") != "true" {
			t.Fatalf("chat newcomer got %s before the history's message, want history:true", m)
		}
		if bytes.Contains(m.Body, []byte(`"text":"hello"`)) {
			break
		}
	}
	// The file's catch-all applies elsewhere: an ordinary topic takes a client's SEND.
	pub := ts.rawTCP(t)
	pub.connect("1.2")
	pub.send("SEND\ndestination:/topic/free\nreceipt:ok\n\nx\x00")
	pub.expect("RECEIPT")
}
