package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws"
	"github.com/stompd/stompd/stompws/auth"
	"github.com/stompd/stompd/stompws/frame"
)

// expectBodies reads len(want) MESSAGE frames of subscription sub and checks their bodies in order.
func expectBodies(t *testing.T, rc *rawClient, sub string, want ...string) []*rawFrame {
	t.Helper()
	var got []*rawFrame
	for _, w := range want {
		f := rc.expect(frame.MESSAGE)
		if f.Get("subscription") != sub || string(f.Body) != w {
			t.Fatalf("want %q on subscription %s, got %s", w, sub, f)
		}
		got = append(got, f)
	}
	return got
}

// sendAll sends each body to dest with a receipt and waits for it.
func sendAll(rc *rawClient, dest string, bodies ...string) {
	for i, b := range bodies {
		rc.send(fmt.Sprintf("SEND\ndestination:%s\nreceipt:s%d\n\n%s\x00", dest, i, b))
		rc.expect(frame.RECEIPT)
	}
}

// TestDurableSubscription follows RabbitMQ's convention over TCP and WebSocket, in memory and with a
// store: a SUBSCRIBE with durable:true, auto-delete:false and an id keeps the topic's messages while
// its subscriber is away and delivers them when a SUBSCRIBE with the same id comes back; unacknowledged
// ones come back marked redelivered; UNSUBSCRIBE with durable:true removes it.
func TestDurableSubscription(t *testing.T) {
	forQueueModes(t, func(t *testing.T, mode func(*serverConfig)) {
		ts := startServer(t, mode)
		for _, tr := range []string{"tcp", "ws"} {
			t.Run(tr, func(t *testing.T) {
				dest := "/topic/dur." + tr
				// Kept messages come before the RECEIPT in memory mode and after it with a store, so a
				// receipt is asked only where nothing is kept.
				durable := "SUBSCRIBE\nid:keep-" + tr + "\ndestination:" + dest + "\ndurable:true\nauto-delete:false\nack:client-individual\n\n\x00"
				durableReceipt := strings.Replace(durable, "\n\n", "\nreceipt:sub\n\n", 1)
				pub := ts.rawOver(t, tr)
				pub.connect("1.2")

				sub := ts.rawOver(t, tr)
				sub.connect("1.2")
				sub.send(durableReceipt)
				sub.expect(frame.RECEIPT)
				sendAll(pub, dest, "m1", "m2")
				got := expectBodies(t, sub, "keep-"+tr, "m1", "m2")
				sub.send("ACK\nid:" + got[0].Get("ack") + "\n\n\x00")
				sub.send("DISCONNECT\nreceipt:bye\n\n\x00")
				sub.expect(frame.RECEIPT)
				sub.expectClosed()
				// m2, unacknowledged, is back in the durable subscription once the session has ended.
				waitFor(t, "the session's end", func() bool { return ts.Broker.Stats().UnackedMessages == 0 })

				sendAll(pub, dest, "m3", "m4")
				back := ts.rawOver(t, tr)
				back.connect("1.2")
				back.send(durable)
				got = expectBodies(t, back, "keep-"+tr, "m2", "m3", "m4")
				if got[0].Get("redelivered") != "true" || got[1].Get("redelivered") == "true" {
					t.Errorf("redelivered headers: %q %q", got[0].Get("redelivered"), got[1].Get("redelivered"))
				}
				// A plain UNSUBSCRIBE leaves it in place; with durable:true it goes, and what it kept with it.
				back.send("UNSUBSCRIBE\nid:keep-" + tr + "\nreceipt:unsub\n\n\x00")
				back.expect(frame.RECEIPT)
				sendAll(pub, dest, "m5")
				back.send(durable)
				expectBodies(t, back, "keep-"+tr, "m2", "m3", "m4", "m5")
				back.send("UNSUBSCRIBE\nid:keep-" + tr + "\ndurable:true\nreceipt:gone\n\n\x00")
				back.expect(frame.RECEIPT)
				sendAll(pub, dest, "m6")
				back.send(durableReceipt)
				back.expect(frame.RECEIPT)
				sendAll(pub, dest, "m7")
				expectBodies(t, back, "keep-"+tr, "m7")
			})
		}
	})
}

// TestDurableSubscriptionErrors: what cannot be a durable subscription gets an ERROR that says why.
func TestDurableSubscriptionErrors(t *testing.T) {
	ts := startServer(t, streamPolicy(broker.StreamLimits{}))
	rc := ts.rawOver(t, "tcp")
	rc.connect("1.2")
	rc.send("SUBSCRIBE\nid:d\ndestination:/topic/a\ndurable:true\nreceipt:r\n\n\x00")
	rc.expect(frame.RECEIPT)
	cases := []struct{ version, frame, message, detail string }{
		{"1.0", "SUBSCRIBE\ndestination:/topic/a\npersistent:true\n\n\x00", "missing id header", "named by its id"},
		{"1.2", "SUBSCRIBE\nid:d\ndestination:/topic/b\ndurable:true\n\n\x00", "durable subscription mismatch", `"d" is bound to "/topic/a"`},
		{"1.2", "SUBSCRIBE\nid:s\ndestination:/topic/log.a\ndurable:true\nx-stream-offset:first\n\n\x00", "invalid x-stream-offset header", "cannot also start at an offset"},
		{"1.2", "UNSUBSCRIBE\nid:nothing\ndurable:true\n\n\x00", "subscription not found", "no subscription or durable subscription"},
	}
	for _, c := range cases {
		rc := ts.rawOver(t, "tcp")
		rc.connect(c.version)
		rc.send(c.frame)
		if f := rc.expectError(c.message); !strings.Contains(string(f.Body), c.detail) {
			t.Errorf("%q: ERROR body %q, want it to say %q", c.frame, f.Body, c.detail)
		}
	}
	// auto-delete:true makes it a plain subscription, as in RabbitMQ.
	rc.send("SUBSCRIBE\nid:plain\ndestination:/topic/c\ndurable:true\nauto-delete:true\nreceipt:r\n\n\x00")
	rc.expect(frame.RECEIPT)
	if n := ts.Broker.Stats().DurableSubscriptions; n != 1 {
		t.Errorf("%d durable subscriptions, want 1 (auto-delete:true is not durable)", n)
	}
}

// TestDurableSubscriptionPerUser: with authentication, a durable subscription belongs to its user:
// the same id under another user is another subscription.
func TestDurableSubscriptionPerUser(t *testing.T) {
	fx := newAuthFixture(t, map[string]string{"alice": "wonderland", "bob": "builder"})
	rules := []auth.Rule{{Users: []string{"*"}, Publish: []string{"/topic/#"}, Subscribe: []string{"/topic/#"}}}
	ts := startServer(t, fx.serverConfig(t, rules, stompws.HandshakeAuthOptional))
	login := func(user, pass string) *rawClient {
		rc := ts.rawOver(t, "tcp")
		rc.connect("1.2", "login:"+user, "passcode:"+pass)
		rc.send("SUBSCRIBE\nid:inbox\ndestination:/topic/mail\ndurable:true\n\n\x00")
		return rc
	}
	alice, bob := login("alice", "wonderland"), login("bob", "builder")
	waitFor(t, "both subscriptions", func() bool { return ts.Broker.Stats().DurableSubscriptions == 2 })
	alice.send("DISCONNECT\nreceipt:bye\n\n\x00")
	alice.expect(frame.RECEIPT)
	pub := ts.rawOver(t, "tcp")
	pub.connect("1.2", "login:bob", "passcode:builder")
	sendAll(pub, "/topic/mail", "while alice is away")
	expectBodies(t, bob, "inbox", "while alice is away")
	bob.send("UNSUBSCRIBE\nid:inbox\ndurable:true\nreceipt:gone\n\n\x00")
	bob.expect(frame.RECEIPT)
	alice = login("alice", "wonderland")
	if f := expectBodies(t, alice, "inbox", "while alice is away")[0]; f.Get("user-id") != "bob" {
		t.Errorf("user-id %q, want bob", f.Get("user-id"))
	}
	if n := ts.Broker.Stats().DurableSubscriptions; n != 1 {
		t.Errorf("%d durable subscriptions, want alice's alone (bob deleted his)", n)
	}
}

// TestDurableSubscriptionGoStomp: go-stomp with RabbitMQ's headers, across a reconnect.
func TestDurableSubscriptionGoStomp(t *testing.T) {
	transports(t, func(t *testing.T, dial func(testing.TB, ...func(*stomp.Conn) error) *stomp.Conn, ts *testServer) {
		subscribe := func(conn *stomp.Conn) *stomp.Subscription {
			sub, err := conn.Subscribe("/topic/dur.gostomp", stomp.AckClientIndividual, stomp.SubscribeOpt.Id("gostomp-durable"),
				stomp.SubscribeOpt.Header("durable", "true"), stomp.SubscribeOpt.Header("auto-delete", "false"))
			if err != nil {
				t.Fatal(err)
			}
			return sub
		}
		conn := dial(t)
		subscribe(conn)
		_ = conn.Disconnect() // go-stomp may report the WebSocket it closed as already closed
		waitFor(t, "the subscriber gone", func() bool { return ts.Broker.Stats().Subscriptions == 0 })
		pub := dial(t)
		for i := range 20 {
			if err := pub.Send("/topic/dur.gostomp", "text/plain", []byte(fmt.Sprint(i)), stomp.SendOpt.Receipt); err != nil {
				t.Fatal(err)
			}
		}
		conn = dial(t)
		sub := subscribe(conn)
		for i := range 20 {
			m := recv(t, sub)
			if string(m.Body) != fmt.Sprint(i) {
				t.Fatalf("message %d: %q", i, m.Body)
			}
			if err := conn.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
		noMessage(t, sub, 100*time.Millisecond)
	})
}

// TestDurableSubscriptionSurvivesKill runs the binary with -data-dir: a durable subscription whose
// subscriber left keeps what is published, across SIGKILL and a restart, and keeps what is published
// after the restart before its subscriber returns.
func TestDurableSubscriptionSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-data-dir", dir)
	ts := p.clients(stompAddr)
	sub := ts.rawOver(t, "ws")
	sub.connect("1.2")
	sub.send("SUBSCRIBE\nid:orders\ndestination:/topic/orders.*\ndurable:true\nauto-delete:false\nreceipt:r\n\n\x00")
	sub.expect(frame.RECEIPT)
	sub.send("DISCONNECT\nreceipt:bye\n\n\x00")
	sub.expect(frame.RECEIPT)
	pub := ts.rawOver(t, "tcp")
	pub.connect("1.2")
	sendAll(pub, "/topic/orders.eu", "o1", "o2", "o3")
	p.kill()
	p.start()
	ts = p.clients(stompAddr)
	pub = ts.rawOver(t, "tcp")
	pub.connect("1.2")
	sendAll(pub, "/topic/orders.us", "o4")
	if n := scrapeValue(t, p.URL()+"/metrics", "stompd_durable_subscriptions_current"); n != 1 {
		t.Errorf("stompd_durable_subscriptions_current = %v after the restart, want 1", n)
	}
	back := ts.rawOver(t, "ws")
	back.connect("1.2")
	back.send("SUBSCRIBE\nid:orders\ndestination:/topic/orders.*\ndurable:true\nauto-delete:false\n\n\x00")
	expectBodies(t, back, "orders", "o1", "o2", "o3", "o4")
}
