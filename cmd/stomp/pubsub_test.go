package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws/stompwstest"
)

func TestPubThenSub(t *testing.T) {
	eachTransport(t, func(t *testing.T, tb *testBroker, url string) {
		mustSucceed(t, runStomp(t, "", nil, "pub", "-url", url, "/queue/greet", "hello"), "pub")
		mustSucceed(t, runStomp(t, "", nil, "pub", "-url", url, "/queue/greet", "world\n"), "pub")
		r := runStomp(t, "", nil, "sub", "-url", url, "-count", "2", "/queue/greet")
		mustSucceed(t, r, "sub")
		if want := "hello\nworld\n"; r.stdout != want {
			t.Errorf("sub printed %q, want %q", r.stdout, want)
		}
	})
}

func TestSubTopicWhilePublishing(t *testing.T) {
	eachTransport(t, func(t *testing.T, tb *testBroker, url string) {
		done := make(chan result, 1)
		go func() { done <- runStomp(t, "", nil, "sub", "/topic/live", "-url", url, "-count", "1", "-headers") }()
		waitFor(t, "the subscription", func() bool {
			return tb.broker.SubscriptionsByKind()[broker.KindTopic] == 1
		})
		mustSucceed(t, runStomp(t, "", nil, "pub", "-url", url, "-H", "color:blue", "/topic/live", "tick"), "pub")
		r := <-done
		mustSucceed(t, r, "sub")
		head, body, ok := strings.Cut(r.stdout, "\n\n")
		if !ok || body != "tick\n\n" {
			t.Fatalf("sub -headers printed %q, want headers, blank line, body, blank line", r.stdout)
		}
		for _, want := range []string{"destination:/topic/live", "color:blue", "message-id:", "subscription:"} {
			if !strings.Contains(head, want) {
				t.Errorf("headers %q lack %q", head, want)
			}
		}
	})
}

func TestSubJSON(t *testing.T) {
	binary := string([]byte{0xff, 0x00, 0xfe, 'x'})
	cases := []struct {
		name       string
		body       string
		args       []string
		wantBody   *string
		wantBase64 *string
	}{
		{name: "text", body: "héllo", args: []string{"héllo"}, wantBody: ptr("héllo")},
		{name: "text from stdin", body: "a\nb\n", args: []string{"-"}, wantBody: ptr("a\nb\n")},
		{name: "binary from stdin", body: binary, args: []string{"-"}, wantBase64: ptr(base64.StdEncoding.EncodeToString([]byte(binary)))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachTransport(t, func(t *testing.T, tb *testBroker, url string) {
				pubArgs := append([]string{"pub", "-url", url, "-H", "color:blue", "-H", "note:a:b", "-content-type", "application/x-test", "/queue/json"}, tc.args...)
				mustSucceed(t, runStomp(t, tc.body, nil, pubArgs...), "pub")
				r := runStomp(t, "", nil, "sub", "-url", url, "-json", "-count", "1", "/queue/json")
				mustSucceed(t, r, "sub")
				if strings.Count(r.stdout, "\n") != 1 || !strings.HasSuffix(r.stdout, "\n") {
					t.Fatalf("want one JSON line, got %q", r.stdout)
				}
				var got jsonMessage
				if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
					t.Fatalf("decode %q: %v", r.stdout, err)
				}
				if got.Destination != "/queue/json" || got.Subscription == "" || got.MessageID == "" {
					t.Errorf("destination %q subscription %q message_id %q", got.Destination, got.Subscription, got.MessageID)
				}
				for k, want := range map[string]string{"color": "blue", "note": "a:b", "content-type": "application/x-test", "destination": "/queue/json"} {
					if got.Headers[k] != want {
						t.Errorf("header %s = %q, want %q (headers %v)", k, got.Headers[k], want, got.Headers)
					}
				}
				if !equalPtr(got.Body, tc.wantBody) || !equalPtr(got.BodyBase64, tc.wantBase64) {
					t.Errorf("body %v body_base64 %v, want %v and %v", deref(got.Body), deref(got.BodyBase64), deref(tc.wantBody), deref(tc.wantBase64))
				}
			})
		})
	}
}

func TestPubLinesAndCount(t *testing.T) {
	cases := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{name: "lines", stdin: "one\ntwo\r\n\nthree", args: []string{"-lines", "-"}, want: "one\ntwo\n\nthree\n"},
		{name: "count", args: []string{"-count", "3", "x"}, want: "x\nx\nx\n"},
		{name: "lines and count", stdin: "a\nb\n", args: []string{"-lines", "-count", "2", "-"}, want: "a\na\nb\nb\n"},
		{name: "every message with a receipt", args: []string{"-receipt", "-count", "2", "r"}, want: "r\nr\n"},
		{name: "rate", args: []string{"-rate", "1000", "-count", "5", "p"}, want: "p\np\np\np\np\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachTransport(t, func(t *testing.T, tb *testBroker, url string) {
				args := append([]string{"pub", "-url", url, "/queue/many"}, tc.args...)
				mustSucceed(t, runStomp(t, tc.stdin, nil, args...), "pub")
				n := strings.Count(tc.want, "\n")
				// pub returned only after the broker took every message, so they are all queued now.
				if ready, _, _ := tb.broker.QueueDepth("/queue/many"); ready != n {
					t.Fatalf("queue holds %d messages after pub, want %d", ready, n)
				}
				r := runStomp(t, "", nil, "sub", "-url", url, "-count", strconv.Itoa(n), "/queue/many")
				mustSucceed(t, r, "sub")
				if r.stdout != tc.want {
					t.Errorf("sub printed %q, want %q", r.stdout, tc.want)
				}
			})
		})
	}
}

func TestSubAckModes(t *testing.T) {
	cases := []struct {
		ack         string
		wantReady   int // left in the queue once sub has gone
		wantPrinted int
	}{
		// Acked after printing: nothing returns to the queue.
		{ack: "client-individual", wantReady: 0, wantPrinted: 3},
		{ack: "client", wantReady: 0, wantPrinted: 3},
	}
	for _, tc := range cases {
		t.Run(tc.ack, func(t *testing.T) {
			tb := startBroker(t)
			mustSucceed(t, runStomp(t, "", nil, "pub", "-url", tb.tcpURL, "-count", "5", "/queue/acks", "m"), "pub")
			r := runStomp(t, "", nil, "sub", "-url", tb.tcpURL, "-ack", tc.ack, "-count", "3", "/queue/acks")
			mustSucceed(t, r, "sub")
			if got := strings.Count(r.stdout, "m\n"); got != tc.wantPrinted {
				t.Errorf("printed %d messages, want %d", got, tc.wantPrinted)
			}
			// The 2 messages sub did not print (delivered ahead, or never) are back in the queue,
			// unacked ones once the broker has seen the connection go.
			waitFor(t, "the queue to settle", func() bool {
				ready, unacked, _ := tb.broker.QueueDepth("/queue/acks")
				return ready == 2 && unacked == 0
			})
			r = runStomp(t, "", nil, "sub", "-url", tb.tcpURL, "-ack", tc.ack, "-count", "2", "/queue/acks")
			mustSucceed(t, r, "second sub")
			waitFor(t, "the queue to empty", func() bool {
				ready, unacked, _ := tb.broker.QueueDepth("/queue/acks")
				return ready == 0 && unacked == 0
			})
		})
	}
}

// TestSubAcksABacklog: sub in a client ack mode works through a queue far deeper than go-stomp
// buffers, acking as it prints; its default -prefetch keeps go-stomp from stalling on its own ACKs.
func TestSubAcksABacklog(t *testing.T) {
	const n = 2000
	for _, ack := range []string{"client-individual", "client"} {
		t.Run(ack, func(t *testing.T) {
			tb := startBroker(t)
			mustSucceed(t, runStomp(t, "", nil, "pub", "-url", tb.tcpURL, "-count", strconv.Itoa(n), "/queue/backlog", "m"), "pub")
			r := runStompWithin(t, "", "sub", "-url", tb.tcpURL, "-ack", ack, "-count", strconv.Itoa(n), "/queue/backlog")
			mustSucceed(t, r, "sub")
			if got := strings.Count(r.stdout, "m\n"); got != n {
				t.Fatalf("printed %d messages, want %d", got, n)
			}
			waitFor(t, "the queue to empty", func() bool {
				ready, unacked, _ := tb.broker.QueueDepth("/queue/backlog")
				return ready == 0 && unacked == 0
			})
		})
	}
}

func TestSubWithoutAckRequeues(t *testing.T) {
	// The contrast to TestSubAckModes: a client-ack subscriber that receives messages but stops before
	// printing, here because its standard output fails, acks none of them, so they return to the queue.
	tb := startBroker(t)
	mustSucceed(t, runStomp(t, "", nil, "pub", "-url", tb.tcpURL, "-count", "2", "/queue/unacked", "m"), "pub")
	r := runStompTo(t, failingWriter{}, "", nil, "sub", "-url", tb.tcpURL, "-ack", "client-individual", "/queue/unacked")
	if r.code != exitFailure || !strings.Contains(r.stderr, "write: "+errStdoutBroken.Error()) {
		t.Fatalf("exit %d, stderr %q; want exit %d after failing to print a message it received", r.code, r.stderr, exitFailure)
	}
	waitFor(t, "both messages back in the queue", func() bool {
		ready, unacked, _ := tb.broker.QueueDepth("/queue/unacked")
		return ready == 2 && unacked == 0
	})
	r = runStomp(t, "", nil, "sub", "-url", tb.tcpURL, "-headers", "-count", "2", "/queue/unacked")
	mustSucceed(t, r, "second sub")
	if got := strings.Count(r.stdout, "redelivered:true"); got != 2 {
		t.Errorf("second sub printed %d redelivered messages, want both (stdout %q)", got, r.stdout)
	}
}

// errStdoutBroken is failingWriter's error, as a closed pipe gives one.
var errStdoutBroken = errors.New("broken pipe")

// failingWriter is a standard output that fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errStdoutBroken }

func TestBrokerErrors(t *testing.T) {
	eachTransport(t, func(t *testing.T, tb *testBroker, url string) {
		cases := []struct {
			name string
			args []string
		}{
			{name: "pub", args: []string{"pub", "-url", url, "/nowhere", "x"}},
			{name: "pub without receipt on the failing message", args: []string{"pub", "-url", url, "-count", "3", "/nowhere", "x"}},
			{name: "pub lines", args: []string{"pub", "-url", url, "-lines", "/nowhere", "-"}},
			{name: "sub", args: []string{"sub", "-url", url, "/nowhere"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := runStomp(t, "a\nb\n", nil, tc.args...)
				if r.code != exitFailure {
					t.Fatalf("exit %d, want %d (stderr %q)", r.code, exitFailure, r.stderr)
				}
				if !strings.Contains(r.stderr, "broker ERROR: unknown destination") || strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("stderr %q: want one line with the ERROR frame's message", r.stderr)
				}
			})
		}
	})
}

func TestEnvironment(t *testing.T) {
	tb := startBroker(t)
	env := map[string]string{"STOMP_URL": tb.wsURL, "STOMP_LOGIN": "alice", "STOMP_PASSCODE": "secret"}
	mustSucceed(t, runStomp(t, "", env, "pub", "/queue/env", "from env"), "pub")
	r := runStomp(t, "", env, "sub", "-count", "1", "/queue/env")
	mustSucceed(t, r, "sub")
	if r.stdout != "from env\n" {
		t.Errorf("sub printed %q", r.stdout)
	}
	// A flag wins over the environment.
	r = runStomp(t, "", map[string]string{"STOMP_URL": "tcp://127.0.0.1:1"}, "pub", "-url", tb.tcpURL, "/queue/env", "x")
	mustSucceed(t, r, "pub with -url over STOMP_URL")
}

func ptr(s string) *string { return &s }

func deref(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return *p
}

func equalPtr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func TestPubErrorWhileAwaitingReceipt(t *testing.T) {
	// An ERROR must end pub at once with the broker's message, also when it arrives while pub is
	// waiting for a receipt go-stomp has not yet registered; go-stomp alone would then wait out its
	// 30-second receipt timeout. Each case is looped because the race is won or lost per run.
	t.Run("unknown destination", func(t *testing.T) {
		eachTransport(t, func(t *testing.T, tb *testBroker, url string) {
			for range 10 {
				r := runStompWithin(t, "", "pub", "-url", url, "-count", "3", "/nowhere", "x")
				if r.code != exitFailure || !strings.Contains(r.stderr, "broker ERROR: unknown destination") {
					t.Fatalf("exit %d, stderr %q; want %d and the ERROR's message", r.code, r.stderr, exitFailure)
				}
			}
		})
	})
	t.Run("ERROR while a large message is being written", func(t *testing.T) {
		addr := startRefusingBroker(t)
		body := strings.Repeat("b", 16<<20) // fills the socket buffers, so pub's writes are still under way when the ERROR comes
		for _, args := range [][]string{
			{"-count", "3"},
			{"-receipt", "-count", "2"},
			{"-lines"}, // confirmed by the DISCONNECT receipt
		} {
			for range 3 {
				r := runStompWithin(t, body, append([]string{"pub", "-url", "tcp://" + addr, "/queue/a", "-"}, args...)...)
				if r.code != exitFailure || !strings.Contains(r.stderr, "broker ERROR: go away") {
					t.Fatalf("pub %v: exit %d, stderr %q; want %d and the ERROR's message", args, r.code, r.stderr, exitFailure)
				}
			}
		}
	})
}

// runStompWithin is runStomp that fails the test when the command is still running after
// waitTimeout, well short of go-stomp's receipt timeout.
func runStompWithin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	done := make(chan result, 1)
	go func() { done <- runStomp(t, stdin, nil, args...) }()
	select {
	case r := <-done:
		return r
	case <-time.After(waitTimeout):
		t.Fatalf("stomp %v still running after %s", args, waitTimeout)
		return result{}
	}
}

// startRefusingBroker serves a STOMP peer over TCP that answers CONNECT, then sends ERROR "go away"
// as soon as the first bytes of the next frame arrive, and reads and discards whatever follows until
// the client hangs up.
func startRefusingBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := br.ReadBytes(0); err != nil {
					return
				}
				if _, err := c.Write([]byte("CONNECTED\nversion:1.2\n\n\x00")); err != nil {
					return
				}
				if _, err := br.ReadByte(); err != nil {
					return
				}
				if _, err := c.Write([]byte("ERROR\nmessage:go away\n\n\x00")); err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, br)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestSubStreamOffsetAndDurable(t *testing.T) {
	s := stompwstest.Start(t, stompwstest.Config{BrokerOptions: broker.Options{
		Policies: []broker.DestinationPolicy{{Pattern: "/topic/log", Stream: true}}}})
	url := "tcp://" + s.TCPAddr
	for _, body := range []string{"a", "b", "c"} {
		mustSucceed(t, runStomp(t, "", nil, "pub", "-url", url, "/topic/log", body), "pub")
	}
	r := runStomp(t, "", nil, "sub", "-url", url, "-offset", "offset=2", "-count", "2", "-headers", "/topic/log")
	mustSucceed(t, r, "sub -offset")
	if !strings.Contains(r.stdout, "x-stream-offset:2\n") || !strings.Contains(r.stdout, "\n\nc\n\n") {
		t.Errorf("sub -offset offset=2 printed %q", r.stdout)
	}

	r = runStomp(t, "", nil, "sub", "-url", url, "-durable", "audit", "-timeout", "200ms", "/topic/news")
	if r.code != 3 {
		t.Fatalf("sub -durable with nothing published: exit %d, %s", r.code, r.stderr)
	}
	mustSucceed(t, runStomp(t, "", nil, "pub", "-url", url, "/topic/news", "while away"), "pub")
	r = runStomp(t, "", nil, "sub", "-url", url, "-durable", "audit", "-count", "1", "/topic/news")
	mustSucceed(t, r, "sub -durable")
	if r.stdout != "while away\n" {
		t.Errorf("sub -durable printed %q", r.stdout)
	}
	r = runStomp(t, "", nil, "sub", "-url", url, "-durable", "audit", "/topic/a", "/topic/b")
	if r.code != 2 || !strings.Contains(r.stderr, "one DEST") {
		t.Errorf("sub -durable with two destinations: exit %d, %q", r.code, r.stderr)
	}
}
