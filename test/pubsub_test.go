package test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"
	stompframe "github.com/go-stomp/stomp/v3/frame"
)

func TestTopicFanOut(t *testing.T) {
	transports(t, func(t *testing.T, dial func(testing.TB, ...func(*stomp.Conn) error) *stomp.Conn, ts *testServer) {
		pub := dial(t)
		var subs []*stomp.Subscription
		for i := 0; i < 3; i++ {
			sub, err := dial(t).Subscribe("/topic/news", stomp.AckAuto)
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, sub)
		}
		waitFor(t, "3 subscriptions", func() bool { return ts.Broker.Stats().Subscriptions == 3 })
		for i := 0; i < 10; i++ {
			err := pub.Send("/topic/news", "text/plain", []byte("news "+strconv.Itoa(i)),
				stomp.SendOpt.Header("x-custom", "v"+strconv.Itoa(i)), stomp.SendOpt.Header("x-custom", "ignored"))
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, sub := range subs {
			for i := 0; i < 10; i++ {
				m := recv(t, sub)
				if got, want := string(m.Body), "news "+strconv.Itoa(i); got != want {
					t.Fatalf("body %q, want %q", got, want)
				}
				if m.ContentType != "text/plain" || m.Destination != "/topic/news" {
					t.Fatalf("content-type %q destination %q", m.ContentType, m.Destination)
				}
				if got := m.Header.Get("x-custom"); got != "v"+strconv.Itoa(i) {
					t.Fatalf("x-custom %q: the first of repeated headers must win", got)
				}
				if n := len(m.Header.GetAll("x-custom")); n != 1 {
					t.Fatalf("x-custom appears %d times, want once", n)
				}
				if m.Header.Get(stompframe.MessageId) == "" || m.Header.Get(stompframe.Subscription) != sub.Id() {
					t.Fatalf("MESSAGE lacks message-id or subscription: %v", m.Header)
				}
			}
		}
	})
}

func TestTopicWildcards(t *testing.T) {
	ts := startServer(t)
	c := ts.dialTCP(t)
	one, _ := c.Subscribe("/topic/stocks.*", stomp.AckAuto)
	many, _ := c.Subscribe("/topic/stocks.#", stomp.AckAuto)
	exact, _ := c.Subscribe("/topic/stocks.nyse.ibm", stomp.AckAuto)
	waitFor(t, "subscriptions", func() bool { return ts.Broker.Stats().Subscriptions == 3 })
	pub := ts.dialTCP(t)
	for _, d := range []string{"/topic/stocks", "/topic/stocks.aapl", "/topic/stocks.nyse.ibm", "/topic/bonds.x"} {
		if err := pub.Send(d, "", []byte(d), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	if got := recv(t, one).Destination; got != "/topic/stocks.aapl" {
		t.Fatalf("stocks.* got %s", got)
	}
	for _, want := range []string{"/topic/stocks", "/topic/stocks.aapl", "/topic/stocks.nyse.ibm"} {
		if got := recv(t, many).Destination; got != want {
			t.Fatalf("stocks.# got %s, want %s", got, want)
		}
	}
	if got := recv(t, exact).Destination; got != "/topic/stocks.nyse.ibm" {
		t.Fatalf("exact got %s", got)
	}
	noMessage(t, one, 100*time.Millisecond)
	noMessage(t, many, 10*time.Millisecond)
}

func TestQueueCompetingConsumers(t *testing.T) {
	forQueueModes(t, func(t *testing.T, mode func(*serverConfig)) {
		transportsWith(t, mode, func(t *testing.T, dial func(testing.TB, ...func(*stomp.Conn) error) *stomp.Conn, ts *testServer) {
			pub := dial(t)
			// Held while nobody consumes.
			for i := 0; i < 4; i++ {
				if err := pub.Send("/queue/jobs", "", []byte("early "+strconv.Itoa(i)), stomp.SendOpt.Receipt); err != nil {
					t.Fatal(err)
				}
			}
			if ready, _, _ := ts.Broker.QueueDepth("/queue/jobs"); ready != 4 {
				t.Fatalf("queue depth %d, want 4 held", ready)
			}
			a, _ := dial(t).Subscribe("/queue/jobs", stomp.AckAuto)
			for i := 0; i < 4; i++ {
				if got := string(recv(t, a).Body); got != "early "+strconv.Itoa(i) {
					t.Fatalf("held message %d: %q", i, got)
				}
			}
			b, _ := dial(t).Subscribe("/queue/jobs", stomp.AckAuto)
			waitFor(t, "two consumers", func() bool { return ts.Broker.Stats().Subscriptions == 2 })
			const n = 100
			for i := 0; i < n; i++ {
				if err := pub.Send("/queue/jobs", "", []byte(strconv.Itoa(i))); err != nil {
					t.Fatal(err)
				}
			}
			seen := map[string]int{}
			counts := [2]int{}
			for len(seen) < n {
				select {
				case m := <-a.C:
					seen[string(m.Body)]++
					counts[0]++
				case m := <-b.C:
					seen[string(m.Body)]++
					counts[1]++
				case <-time.After(waitTimeout):
					t.Fatalf("got %d of %d messages", len(seen), n)
				}
			}
			for body, c := range seen {
				if c != 1 {
					t.Fatalf("message %s delivered %d times", body, c)
				}
			}
			if counts[0] < n/4 || counts[1] < n/4 {
				t.Fatalf("round-robin split %v, want both consumers served", counts)
			}
		})
	})
}

func TestNackAndCloseRedeliverAcrossConsumers(t *testing.T) {
	forQueueModes(t, testNackAndCloseRedeliver)
}

func testNackAndCloseRedeliver(t *testing.T, mode func(*serverConfig)) {
	ts := startServer(t, mode)
	pub := ts.dialTCP(t)
	a := ts.dialTCP(t)
	subA, _ := a.Subscribe("/queue/work", stomp.AckClientIndividual, stomp.SubscribeOpt.Header("prefetch-count", "1"))
	waitFor(t, "consumer A", func() bool { return ts.Broker.Stats().Subscriptions == 1 })
	for i := 0; i < 2; i++ {
		_ = pub.Send("/queue/work", "", []byte("job"+strconv.Itoa(i)), stomp.SendOpt.Receipt)
	}
	m := recv(t, subA)
	if string(m.Body) != "job0" || m.Header.Get("redelivered") != "" {
		t.Fatalf("first delivery %q redelivered=%q", m.Body, m.Header.Get("redelivered"))
	}
	// prefetch-count:1 holds job1 back until job0 is settled.
	noMessage(t, subA, 200*time.Millisecond)
	if err := a.Nack(m); err != nil {
		t.Fatal(err)
	}
	again := recv(t, subA)
	if string(again.Body) != "job0" || again.Header.Get("redelivered") != "true" {
		t.Fatalf("after NACK got %q redelivered=%q, want job0 redelivered", again.Body, again.Header.Get("redelivered"))
	}
	// A second consumer joins; A goes away without acking: job0 must reach B, redelivered.
	b := ts.dialTCP(t)
	subB, _ := b.Subscribe("/queue/work", stomp.AckClientIndividual)
	waitFor(t, "consumer B", func() bool { return ts.Broker.Stats().Subscriptions == 2 })
	if err := a.Disconnect(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for i := 0; i < 2; i++ {
		m := recv(t, subB)
		got[string(m.Body)] = m.Header.Get("redelivered")
		if err := b.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	if got["job0"] != "true" || len(got) != 2 {
		t.Fatalf("consumer B got %v, want job0 redelivered and job1", got)
	}
	waitFor(t, "queue settled", func() bool {
		ready, unacked, _ := ts.Broker.QueueDepth("/queue/work")
		return ready == 0 && unacked == 0
	})
}

func TestCumulativeVersusIndividualAck(t *testing.T) {
	forQueueModes(t, testCumulativeVersusIndividualAck)
}

func testCumulativeVersusIndividualAck(t *testing.T, store func(*serverConfig)) {
	for _, mode := range []string{"client", "client-individual"} {
		t.Run(mode, func(t *testing.T) {
			ts := startServer(t, store)
			c := ts.rawTCP(t)
			c.connect("1.2")
			c.send("SUBSCRIBE\nid:s\ndestination:/queue/q\nack:" + mode + "\nreceipt:sub\n\n\x00")
			c.expect("RECEIPT")
			pub := ts.dialTCP(t)
			for i := 0; i < 3; i++ {
				_ = pub.Send("/queue/q", "", []byte(strconv.Itoa(i)), stomp.SendOpt.Receipt)
			}
			var ackIDs []string
			for i := 0; i < 3; i++ {
				m := c.expect("MESSAGE")
				if m.Get("ack") == "" {
					t.Fatalf("MESSAGE without ack header in %s mode: %s", mode, m)
				}
				ackIDs = append(ackIDs, m.Get("ack"))
			}
			// ACK the second message only.
			c.send("ACK\nid:" + ackIDs[1] + "\nreceipt:ack\n\n\x00")
			c.expect("RECEIPT")
			wantUnacked := map[string]int{"client": 1, "client-individual": 2}[mode]
			if _, unacked, _ := ts.Broker.QueueDepth("/queue/q"); unacked != wantUnacked {
				t.Fatalf("%s: %d unacked after acking the 2nd of 3, want %d", mode, unacked, wantUnacked)
			}
		})
	}
}

func TestTransactions(t *testing.T) {
	forQueueModes(t, testTransactions)
}

func testTransactions(t *testing.T, mode func(*serverConfig)) {
	ts := startServer(t, mode)
	sub, _ := ts.dialTCP(t).Subscribe("/topic/tx", stomp.AckAuto)
	waitFor(t, "subscription", func() bool { return ts.Broker.Stats().Subscriptions == 1 })
	pub := ts.dialTCP(t)

	tx := pub.Begin()
	_ = tx.Send("/topic/tx", "", []byte("a"))
	_ = tx.Send("/topic/tx", "", []byte("b"))
	// The server handles a connection's frames in order: once this SEND's RECEIPT is back, the
	// transaction's SENDs have been handled, and they must not have been delivered.
	if err := pub.Send("/topic/tx", "", []byte("outside"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, sub); string(m.Body) != "outside" {
		t.Fatalf("got %q before COMMIT, want the SEND outside the transaction first", m.Body)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if a, b := recv(t, sub), recv(t, sub); string(a.Body) != "a" || string(b.Body) != "b" {
		t.Fatalf("committed %q %q, want a b in order", a.Body, b.Body)
	}

	tx = pub.Begin()
	_ = tx.Send("/topic/tx", "", []byte("aborted"))
	if err := tx.Abort(); err != nil {
		t.Fatal(err)
	}
	_ = pub.Send("/topic/tx", "", []byte("after"), stomp.SendOpt.Receipt)
	if m := recv(t, sub); string(m.Body) != "after" {
		t.Fatalf("got %q: ABORT must discard the transaction", m.Body)
	}

	// ACK inside a transaction takes effect at COMMIT.
	consumer := ts.dialTCP(t)
	qsub, _ := consumer.Subscribe("/queue/txq", stomp.AckClientIndividual)
	_ = pub.Send("/queue/txq", "", []byte("job"), stomp.SendOpt.Receipt)
	m := recv(t, qsub)
	ctx := consumer.Begin()
	if err := ctx.Ack(m); err != nil {
		t.Fatal(err)
	}
	// A receipted frame behind the ACK: when its RECEIPT is back, the server has handled the ACK.
	if err := consumer.Send("/topic/tx-barrier", "", nil, stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if _, unacked, _ := ts.Broker.QueueDepth("/queue/txq"); unacked != 1 {
		t.Fatalf("ACK in an open transaction took effect early (unacked %d)", unacked)
	}
	if err := ctx.Commit(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ACK applied at COMMIT", func() bool {
		_, unacked, _ := ts.Broker.QueueDepth("/queue/txq")
		return unacked == 0
	})
}

func TestReceiptsForEveryFrame(t *testing.T) {
	ts := startServer(t)
	c := ts.rawWS(t, "v12.stomp")
	c.connect("1.2")
	var ackID string
	steps := []struct {
		frame       func() string
		wantMessage bool // the frame makes a MESSAGE arrive on this connection before its RECEIPT
	}{
		{frame: func() string { return "SUBSCRIBE\nid:0\ndestination:/queue/r\nack:client\n" }},
		{frame: func() string { return "SEND\ndestination:/queue/r\n" }, wantMessage: true},
		{frame: func() string { return "ACK\nid:" + ackID + "\n" }},
		{frame: func() string { return "BEGIN\ntransaction:t\n" }},
		{frame: func() string { return "SEND\ndestination:/topic/r\ntransaction:t\n" }},
		{frame: func() string { return "COMMIT\ntransaction:t\n" }},
		{frame: func() string { return "BEGIN\ntransaction:t2\n" }},
		{frame: func() string { return "NACK\nid:" + ackID + "\ntransaction:t2\n" }},
		{frame: func() string { return "ABORT\ntransaction:t2\n" }},
		{frame: func() string { return "UNSUBSCRIBE\nid:0\n" }},
	}
	for i, step := range steps {
		id := fmt.Sprintf("rcpt-%d", i)
		c.send(step.frame() + "receipt:" + id + "\n\n\x00")
		if step.wantMessage {
			ackID = c.expect("MESSAGE").Get("ack")
		}
		if got := c.expect("RECEIPT").Get("receipt-id"); got != id {
			t.Fatalf("step %d: receipt-id %q, want %q", i, got, id)
		}
	}
	c.send("DISCONNECT\nreceipt:bye\n\n\x00")
	if got := c.expect("RECEIPT").Get("receipt-id"); got != "bye" {
		t.Fatalf("DISCONNECT receipt-id %q", got)
	}
	c.expectClosed()
	if code, _ := c.closeInfo(); code != websocket.StatusNormalClosure {
		t.Fatalf("WebSocket closed with %d after DISCONNECT, want 1000", code)
	}
}
