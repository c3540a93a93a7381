package test

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// TestGoStompAckingConsumersFinish runs the README's go-stomp consumer under load: producers and
// consumers competing on one queue, each consumer acknowledging every message inline as it reads
// sub.C. go-stomp v3 hands a MESSAGE to a subscription (16 buffered) on the same goroutine that
// writes the ACKs (20 buffered), so a consumer allowed more unacknowledged messages than that can stop
// for good: it waits to write an ACK while the goroutine that would write it waits for the consumer to
// read. The patterns README recommends must finish with every message delivered exactly once:
// prefetch-count 16 (never more than go-stomp buffers), or a write channel larger than the prefetch.
func TestGoStompAckingConsumersFinish(t *testing.T) {
	cases := []struct {
		name     string
		prefetch int
		connOpts []func(*stomp.Conn) error
	}{
		{name: "prefetch-count 16", prefetch: 16},
		{name: "prefetch-count 100, write channel 128", prefetch: 100, connOpts: []func(*stomp.Conn) error{stomp.ConnOpt.WriteChannelCapacity(128)}},
	}
	forQueueModes(t, func(t *testing.T, mode func(*serverConfig)) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				const producers, perProducer, consumers = 4, 5000, 4
				ts := startServer(t, mode)
				var mu sync.Mutex
				seen := make(map[string]int, producers*perProducer)
				all := make(chan struct{})
				for range consumers {
					c := ts.dialTCP(t, tc.connOpts...)
					sub, err := c.Subscribe("/queue/work", stomp.AckClientIndividual,
						stomp.SubscribeOpt.Header("prefetch-count", strconv.Itoa(tc.prefetch)))
					if err != nil {
						t.Fatal(err)
					}
					// Should the consumers stop, the test must still end: draining sub.C from another
					// goroutine unblocks go-stomp so that its Disconnect at the end returns.
					t.Cleanup(func() { go drain(sub) })
					go func() {
						for m := range sub.C {
							if m.Err != nil {
								return
							}
							if err := c.Ack(m); err != nil {
								return
							}
							mu.Lock()
							seen[string(m.Body)]++
							if len(seen) == producers*perProducer {
								close(all)
							}
							mu.Unlock()
						}
					}()
				}
				waitFor(t, "the consumers", func() bool { return ts.Broker.Stats().Subscriptions == consumers })
				start := time.Now()
				var wg sync.WaitGroup
				for p := range producers {
					pc := ts.dialTCP(t)
					wg.Go(func() {
						for i := range perProducer {
							if err := pc.Send("/queue/work", "text/plain", []byte(fmt.Sprintf("%d-%d", p, i))); err != nil {
								t.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				select {
				case <-all:
				case <-time.After(waitTimeout):
					mu.Lock()
					n := len(seen)
					mu.Unlock()
					ready, unacked, _ := ts.Broker.QueueDepth("/queue/work")
					t.Fatalf("consumers stopped after %d of %d messages (queue: %d ready, %d unacked)", n, producers*perProducer, ready, unacked)
				}
				mu.Lock()
				defer mu.Unlock()
				for body, n := range seen {
					if n != 1 {
						t.Fatalf("message %s delivered %d times", body, n)
					}
				}
				waitFor(t, "the last ACKs", func() bool {
					ready, unacked, _ := ts.Broker.QueueDepth("/queue/work")
					return ready == 0 && unacked == 0
				})
				t.Logf("%d messages in %s", producers*perProducer, time.Since(start).Round(time.Millisecond))
			})
		}
	})
}
