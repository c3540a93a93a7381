package test

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/metrics"
)

// TestSlowConsumerDoesNotStallOthers is the failure the go-stomp server has, inverted: a subscriber that
// stops reading must not delay a healthy subscriber on the same topic nor stall the publisher; it is
// disconnected with ERROR "slow consumer" once its outbound queue is over the bound.
func TestSlowConsumerDoesNotStallOthers(t *testing.T) {
	for _, tr := range []string{"tcp", "ws"} {
		t.Run(tr, func(t *testing.T) {
			ts := startServer(t, func(c *serverConfig) {
				c.opts.MaxQueuedBytes = 256 << 10
				c.opts.CloseTimeout = time.Minute // the stuck client reads its ERROR at the end of the test
			})
			// The stuck subscriber subscribes, then reads nothing until the end.
			handshake := []byte("CONNECT\naccept-version:1.2\nhost:/\n\n\x00SUBSCRIBE\nid:stuck\ndestination:/topic/feed\n\n\x00")
			var stuckRead func() ([]byte, error)
			if tr == "tcp" {
				nc, err := net.Dial("tcp", ts.TCPAddr)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				_, _ = nc.Write(handshake)
				stuckRead = func() ([]byte, error) {
					_ = nc.SetReadDeadline(time.Now().Add(waitTimeout))
					return io.ReadAll(nc)
				}
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
				defer cancel()
				c, _, err := websocket.Dial(ctx, ts.WSURL, &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}})
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				c.SetReadLimit(-1)
				_ = c.Write(ctx, websocket.MessageText, handshake)
				stuckRead = func() ([]byte, error) {
					var all []byte
					for {
						_, p, err := c.Read(ctx)
						all = append(all, p...)
						if err != nil {
							if code := websocket.CloseStatus(err); code != websocket.StatusTryAgainLater {
								t.Errorf("stuck client's WebSocket closed with %d (%v), want 1013", code, err)
							}
							return all, nil
						}
					}
				}
			}
			healthyConn := ts.dialTCP(t)
			healthy, _ := healthyConn.Subscribe("/topic/feed", stomp.AckAuto)
			waitFor(t, "two subscribers", func() bool { return ts.Broker.Stats().Subscriptions == 2 })

			// 4,000 × 4 KiB = 16 MiB: far beyond the stuck connection's socket buffers plus its 256 KiB
			// queue. The publisher keeps at most a 64 KiB window ahead of the healthy subscriber, so that
			// one never falls behind: only the stuck one may stall the publisher, and it must not.
			const n, window = 4000, 16
			body := bytes.Repeat([]byte("p"), 4<<10)
			pub := ts.dialTCP(t)
			var received atomic.Int64
			published := make(chan error, 1)
			go func() {
				for i := 0; i < n; i++ {
					for int64(i)-received.Load() >= window {
						time.Sleep(100 * time.Microsecond)
					}
					if err := pub.Send("/topic/feed", "", append([]byte(strconv.Itoa(i)+":"), body...)); err != nil {
						published <- err
						return
					}
				}
				published <- nil
			}()
			// The phase takes well under a second here, under the race detector. The bounds are wide
			// enough for a loaded machine and still break if the stuck subscriber held anyone up for
			// seconds (a write timeout, a close timeout, a blocking send).
			const maxGap, maxPhase = 2 * time.Second, 10 * time.Second
			began := time.Now()
			last, longestGap := began, time.Duration(0)
			for i := 0; i < n; i++ {
				m := recv(t, healthy)
				if want := strconv.Itoa(i) + ":"; !bytes.HasPrefix(m.Body, []byte(want)) {
					t.Fatalf("healthy subscriber: message %d is %.10q", i, m.Body)
				}
				now := time.Now()
				longestGap = max(longestGap, now.Sub(last))
				last = now
				received.Add(1)
			}
			select {
			case err := <-published:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(waitTimeout):
				t.Fatal("publisher stalled behind the stuck subscriber")
			}
			phase := time.Since(began)
			t.Logf("publish phase took %s; the healthy subscriber waited at most %s for a message", phase, longestGap)
			if longestGap > maxGap {
				t.Errorf("the healthy subscriber waited %s for one message (bound %s): stalled behind the stuck one", longestGap, maxGap)
			}
			if phase > maxPhase {
				t.Errorf("publishing %d messages took %s (bound %s): stalled behind the stuck subscriber", n, phase, maxPhase)
			}
			// What the stuck client finally reads ends with the ERROR frame, then the close.
			all, err := stuckRead()
			if err != nil && len(all) == 0 {
				t.Fatal(err)
			}
			i := bytes.LastIndex(all, []byte("ERROR\n"))
			if i < 0 || !bytes.Contains(all[i:], []byte("\nmessage:slow consumer\n")) {
				t.Fatalf("stuck client did not get ERROR slow consumer (read %d bytes, tail %q)", len(all), all[max(0, len(all)-200):])
			}
			waitFor(t, "stuck subscription removed", func() bool { return ts.Broker.Stats().Subscriptions == 1 })
		})
	}
}

func TestShutdownNotifiesClients(t *testing.T) {
	ts := startServer(t)
	clients := []*rawClient{ts.rawTCP(t), ts.rawWS(t, "v12.stomp"), ts.rawWS(t, "v10.stomp")}
	for _, c := range clients {
		c.connect("1.2")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := ts.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.expectError("server shutting down")
	}
	if code, _ := clients[1].closeInfo(); code != websocket.StatusGoingAway {
		t.Fatalf("WebSocket close status %v, want going away", code)
	}
	if n := ts.Server.SessionCount(); n != 0 {
		t.Fatalf("%d sessions left after Shutdown", n)
	}
}

// TestQueueDeliveriesWaitForRoom: a queue consumer that stops reading is not disconnected; what does
// not fit in its outbound queue waits in the broker's queue and is delivered, in order, once it reads.
func TestQueueDeliveriesWaitForRoom(t *testing.T) {
	for _, tr := range []string{"tcp", "ws"} {
		t.Run(tr, func(t *testing.T) {
			ts := startServer(t, func(c *serverConfig) { c.opts.MaxQueuedBytes = 64 << 10 })
			c := ts.rawOver(t, tr)
			c.connect("1.2")
			c.send("SUBSCRIBE\nid:q\ndestination:/queue/backlog\nreceipt:r\n\n\x00")
			c.expect("RECEIPT")
			c.pause()

			const n = 2000 // 2000 × 8 KiB = 16 MiB: loopback socket buffers and the 64 KiB queue hold a fraction
			body := bytes.Repeat([]byte("q"), 8<<10)
			pub := ts.dialTCP(t)
			for i := 0; i < n; i++ {
				if err := pub.Send("/queue/backlog", "", append([]byte(strconv.Itoa(i)+":"), body...)); err != nil {
					t.Fatal(err)
				}
			}
			_ = pub.Send("/queue/backlog", "", []byte("end"), stomp.SendOpt.Receipt)
			waitFor(t, "messages held in the queue", func() bool {
				ready, _, _ := ts.Broker.QueueDepth("/queue/backlog")
				return ready > 0
			})
			ready, _, _ := ts.Broker.QueueDepth("/queue/backlog")
			t.Logf("%d of %d messages held in the broker while the consumer was not reading", ready, n+1)

			// A backlogged consumer still gets its receipts: queue deliveries leave room for them.
			// (The receipt id is long so that it cannot fit in the slack an 8 KiB delivery leaves.)
			receiptID := strings.Repeat("r", 16<<10)
			c.send("SUBSCRIBE\nid:other\ndestination:/topic/x\nreceipt:" + receiptID + "\n\n\x00")
			c.resume()
			// The RECEIPT comes exactly once, somewhere among the messages that were already on their
			// way, and before "end", which waited in the broker's queue behind them.
			receiptAt := -1
			for i := 0; i < n; i++ {
				m := c.next()
				if m.Command == "RECEIPT" {
					if receiptAt >= 0 {
						t.Fatalf("second RECEIPT before message %d: %.80s", i, m)
					}
					if m.Get("receipt-id") != receiptID {
						t.Fatalf("RECEIPT with receipt-id %.40q, want the SUBSCRIBE's", m.Get("receipt-id"))
					}
					receiptAt = i
					m = c.next()
				}
				if !bytes.HasPrefix(m.Body, []byte(strconv.Itoa(i)+":")) {
					t.Fatalf("message %d is %.80s", i, m)
				}
			}
			if receiptAt < 0 {
				t.Fatalf("no RECEIPT for the SUBSCRIBE sent while %d messages were backlogged", n)
			}
			t.Logf("RECEIPT arrived before message %d", receiptAt)
			if m := c.expect("MESSAGE"); string(m.Body) != "end" {
				t.Fatalf("last message %q", m.Body)
			}
			if ready, _, _ := ts.Broker.QueueDepth("/queue/backlog"); ready != 0 {
				t.Fatalf("%d messages left in the queue", ready)
			}
		})
	}
}

// TestSlowConsumerErrorWithinCloseTimeout: once a topic subscriber is declared a slow consumer, its
// ERROR waits at most the close timeout to be flushed. A client that reads again within it gets ERROR
// "slow consumer" as the last thing on the wire; one that never reads is cut off when it ends. Either
// way the session is gone, counted as a slow-consumer close, and nobody else waited for it.
func TestSlowConsumerErrorWithinCloseTimeout(t *testing.T) {
	const closeTimeout = 2 * time.Second
	for _, tc := range []struct {
		name      string
		readsSoon bool
	}{
		{name: "reads again within the close timeout", readsSoon: true},
		{name: "never reads"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			ts := startServer(t, func(c *serverConfig) {
				c.opts.MaxQueuedBytes = 64 << 10
				c.opts.CloseTimeout = closeTimeout
				c.opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: "test"})
			})
			stuck, err := net.Dial("tcp", ts.TCPAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer stuck.Close()
			_, _ = io.WriteString(stuck, "CONNECT\naccept-version:1.2\nhost:/\n\n\x00SUBSCRIBE\nid:s\ndestination:/topic/flood\nreceipt:r\n\n\x00")
			waitFor(t, "the stuck subscription", func() bool { return ts.Broker.Stats().Subscriptions == 1 })
			pub := ts.dialTCP(t)
			body := bytes.Repeat([]byte("f"), 4<<10)
			var declared time.Time
			for i := 0; declared.IsZero(); i++ {
				if i == 8000 { // 32 MiB: many times loopback socket buffers
					t.Fatal("no slow consumer declared after 32 MiB published to a client that does not read")
				}
				if err := pub.Send("/topic/flood", "", body, stomp.SendOpt.Receipt); err != nil {
					t.Fatal(err)
				}
				if metricValue(t, reg, "stompd_slow_consumer_disconnects_total") == 1 {
					declared = time.Now()
				}
			}

			if tc.readsSoon {
				_ = stuck.SetReadDeadline(time.Now().Add(waitTimeout))
				all, err := io.ReadAll(stuck)
				if err != nil {
					t.Fatalf("reading after the slow-consumer verdict: %v (read %d bytes)", err, len(all))
				}
				i := bytes.LastIndex(all, []byte("ERROR\n"))
				if i < 0 || !bytes.Contains(all[i:], []byte("\nmessage:slow consumer\n")) || !bytes.HasSuffix(all, []byte("\x00")) {
					t.Fatalf("the client that read again did not end with ERROR slow consumer (read %d bytes, tail %q)", len(all), all[max(0, len(all)-200):])
				}
			}
			waitFor(t, "the slow consumer's session to end", func() bool { return ts.Server.SessionCount() == 1 })
			if took := time.Since(declared); took > closeTimeout+2*time.Second {
				t.Errorf("the slow consumer's session ended %s after the verdict; the close timeout is %s", took, closeTimeout)
			}
			if got := metricValue(t, reg, "stompd_connections_closed_total", "transport", "tcp", "reason", "slow_consumer"); got != 1 {
				t.Errorf("stompd_connections_closed_total{reason=slow_consumer} = %v, want 1", got)
			}
			// The publisher went on all along and still round-trips.
			if err := pub.Send("/topic/flood", "", []byte("after"), stomp.SendOpt.Receipt); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLaggingPoliciesThroughASession: a subscriber that stops reading until its connection's outbound
// queue is full is not disconnected under conflate or drop-oldest. Once it reads again it gets, per
// destination and in publish order, what was already on its way and then what the policy kept: the
// newest message of each destination (conflate) or the newest max-pending messages (drop-oldest).
func TestLaggingPoliciesThroughASession(t *testing.T) {
	const (
		perDest    = 1000 // × 4 destinations × 4 KiB = 16 MiB: loopback buffers and the queue hold a fraction
		maxPending = 20
	)
	dests := []string{"/topic/lag.a", "/topic/lag.b", "/topic/lag.c", "/topic/lag.d"}
	for _, policy := range []broker.SlowConsumerPolicy{broker.PolicyConflate, broker.PolicyDropOldest} {
		for _, tr := range []string{"tcp", "ws"} {
			t.Run(policy.String()+"/"+tr, func(t *testing.T) {
				ts := startServer(t, func(c *serverConfig) {
					c.opts.MaxQueuedBytes = 64 << 10
					c.bopts.Policies = []broker.DestinationPolicy{{Pattern: "/topic/lag.#", SlowConsumer: policy, MaxPending: maxPending}}
				})
				c := ts.rawOver(t, tr)
				c.connect("1.2")
				c.send("SUBSCRIBE\nid:lag\ndestination:/topic/lag.#\nreceipt:s\n\n\x00")
				c.expect("RECEIPT")
				c.pause()

				pub := ts.dialTCP(t)
				body := bytes.Repeat([]byte("x"), 4<<10)
				for i := range perDest {
					for _, d := range dests {
						if err := pub.Send(d, "", append([]byte(strconv.Itoa(i)+":"), body...)); err != nil {
							t.Fatal(err)
						}
					}
				}
				// The end of each destination. Conflation keeps each destination's own order, not the
				// order between destinations, so each needs its own.
				for _, d := range dests {
					if err := pub.Send(d, "", []byte("end"), stomp.SendOpt.Receipt); err != nil {
						t.Fatal(err)
					}
				}
				stats := ts.Broker.Stats()
				if stats.Conflated+stats.DroppedOldest == 0 {
					t.Fatalf("nothing conflated or dropped after 16 MiB to a paused reader: its queue never filled")
				}

				c.resume()
				got := map[string][]int{} // each destination's sequence numbers, in arrival order
				ended := map[string]bool{}
				for len(ended) < len(dests) {
					m := c.expect("MESSAGE")
					d := m.Get("destination")
					if ended[d] {
						t.Fatalf("%s: %.20q after its end", d, m.Body)
					}
					if string(m.Body) == "end" {
						ended[d] = true
						continue
					}
					seq, _, _ := bytes.Cut(m.Body, []byte(":"))
					n, err := strconv.Atoi(string(seq))
					if err != nil {
						t.Fatalf("unexpected body %.20q", m.Body)
					}
					got[d] = append(got[d], n)
				}
				total := 0
				for _, d := range dests {
					seqs := got[d]
					total += len(seqs)
					for i := 1; i < len(seqs); i++ {
						if seqs[i] <= seqs[i-1] {
							t.Fatalf("%s: %d after %d: out of order or duplicated", d, seqs[i], seqs[i-1])
						}
					}
					// Under drop-oldest the newest maxPending messages of the subscription are kept: the
					// four ends and the 16 before them, the newest 4 of each destination. (Under conflate
					// each destination's newest, its end, replaced whatever it held.)
					if policy == broker.PolicyDropOldest {
						want := []int{perDest - 4, perDest - 3, perDest - 2, perDest - 1}
						if len(seqs) < len(want) || !slices.Equal(seqs[len(seqs)-len(want):], want) {
							t.Fatalf("%s: received %d messages ending %v before its end, want %v", d, len(seqs), seqs[max(0, len(seqs)-8):], want)
						}
					}
				}
				stats = ts.Broker.Stats()
				if total >= perDest*len(dests) {
					t.Fatalf("received all %d messages: the paused reader never lagged", total)
				}
				switch {
				case policy == broker.PolicyConflate && (stats.Conflated == 0 || stats.DroppedOldest != 0),
					policy == broker.PolicyDropOldest && (stats.DroppedOldest == 0 || stats.Conflated != 0):
					t.Fatalf("broker counted %d conflated, %d dropped oldest under %s", stats.Conflated, stats.DroppedOldest, policy)
				}
				if lost := uint64(perDest*len(dests) - total); lost != stats.Conflated+stats.DroppedOldest {
					t.Errorf("%d messages not received, but the broker counted %d conflated and %d dropped", lost, stats.Conflated, stats.DroppedOldest)
				}
				t.Logf("received %d of %d messages (%d conflated, %d dropped oldest)", total, perDest*len(dests), stats.Conflated, stats.DroppedOldest)
				// Still connected, still served.
				c.send("SEND\ndestination:/topic/lag.a\nreceipt:alive\n\nalive\x00")
				if m := c.expect("MESSAGE"); string(m.Body) != "alive" {
					t.Fatalf("after catching up got %s", m)
				}
				c.expect("RECEIPT")
			})
		}
	}
}
