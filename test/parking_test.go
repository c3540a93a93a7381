package test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3"

	"github.com/stompd/stompd/transport"
)

// Sessions whose clients are silent wait without a goroutine; messages, ACKs and the clients' own
// frames wake them, and they park again.
func TestIdleSessionsPark(t *testing.T) {
	transports(t, func(t *testing.T, dial func(testing.TB, ...func(*stomp.Conn) error) *stomp.Conn, ts *testServer) {
		const clients, messages = 40, 20
		parkedBefore := transport.ParkedReaders()
		subs := make([]*stomp.Subscription, clients)
		for i := range subs {
			sub, err := dial(t).Subscribe("/topic/parked", stomp.AckAuto)
			if err != nil {
				t.Fatal(err)
			}
			subs[i] = sub
		}
		waitFor(t, "the subscribers' sessions to park", func() bool {
			return ts.Broker.Stats().Subscriptions == clients && transport.ParkedReaders() >= parkedBefore+clients
		})
		waitFor(t, "no goroutine left reading a parked session", func() bool { return readingSessions() == 0 })

		pub := dial(t)
		for i := range messages {
			if err := pub.Send("/topic/parked", "text/plain", fmt.Appendf(nil, "m%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		for i, sub := range subs {
			for j := range messages {
				if got, want := string(recv(t, sub).Body), fmt.Sprintf("m%d", j); got != want {
					t.Fatalf("subscriber %d message %d = %q, want %q", i, j, got, want)
				}
			}
		}

		// A queue consumer acknowledging: each ACK wakes its session, which parks again.
		consumer := dial(t)
		jobs, err := consumer.Subscribe("/queue/parked", stomp.AckClientIndividual)
		if err != nil {
			t.Fatal(err)
		}
		for i := range messages {
			if err := pub.Send("/queue/parked", "text/plain", fmt.Appendf(nil, "job%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		for range messages {
			if err := consumer.Ack(recv(t, jobs)); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "every job acknowledged", func() bool { return ts.Broker.Stats().UnackedMessages == 0 })
		waitFor(t, "every session parked again", func() bool {
			return transport.ParkedReaders() >= parkedBefore+clients+2
		})
	})
}

// readingSessions counts the goroutines reading a session's connection.
func readingSessions() int {
	buf := make([]byte, 4<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "transport.(*readPump).run(")
}

// A parked session hands its frame parser back and takes one again when bytes arrive: the version it
// negotiated still decides how headers are unescaped (STOMP 1.0: not at all).
func TestParkedSessionKeepsItsVersion(t *testing.T) {
	ts := startServer(t)
	for _, tr := range []string{"tcp", "ws"} {
		t.Run(tr, func(t *testing.T) {
			open := func() *rawClient {
				if tr == "ws" {
					return ts.rawWS(t, "v10.stomp")
				}
				return ts.rawTCP(t)
			}
			// The previous subtest's sessions end once their clients have gone.
			waitFor(t, "no session left", func() bool { return ts.Server.SessionCount() == 0 })
			parkedBefore := transport.ParkedReaders()
			sender, receiver := open(), open()
			sender.connect("1.0")
			receiver.connect("1.0")
			receiver.send("SUBSCRIBE\ndestination:/topic/version\nid:0\nreceipt:r\n\n\x00")
			receiver.expect("RECEIPT")
			waitFor(t, "both sessions to park", func() bool { return transport.ParkedReaders() >= parkedBefore+2 })

			sender.send("SEND\ndestination:/topic/version\nx:a\\cb\n\nbody\x00")
			m := receiver.expect("MESSAGE")
			if got := m.Get("x"); got != `a\cb` {
				t.Errorf("header x = %q after parking, want %q as a 1.0 session sent it", got, `a\cb`)
			}
		})
	}
}
