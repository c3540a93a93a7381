package test

import (
	"encoding/json"
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
