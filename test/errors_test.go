package test

import (
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws/frame"
)

// TestErrorPaths sends each bad input and checks the exact ERROR it gets, that the ERROR arrives before
// the close, and that a bystander session on the same server is unaffected.
func TestErrorPaths(t *testing.T) {
	limits := func(c *serverConfig) {
		c.opts.Limits = frame.Limits{MaxFrameBytes: 64 << 10, MaxHeaders: 20, MaxHeaderBytes: 1 << 10}
		c.opts.MaxSubscriptions = 2
		c.opts.MaxTxFrames = 2
		c.opts.MaxTransactions = 1
		c.bopts.MaxQueueDepth = 1
		c.bopts.Policies = []broker.DestinationPolicy{{Pattern: "/queue/bytes.#", MaxQueueDepth: 100, MaxQueueBytes: 100}}
	}
	cases := []struct {
		name     string
		connect  bool                 // send CONNECT 1.2 first
		input    string               // frames to send
		message  string               // expected ERROR message header
		receipt  string               // expected receipt-id, if any
		inDetail string               // expected substring of the ERROR body
		code     websocket.StatusCode // expected WebSocket close status; 0 means 1008 (policy violation)
	}{
		{name: "frame before CONNECT", input: "SEND\ndestination:/topic/a\n\nx\x00", message: "expected CONNECT or STOMP frame"},
		{name: "unsupported version", input: "CONNECT\naccept-version:2.0\n\n\x00", message: "unsupported protocol version"},
		{name: "bad heart-beat", input: "CONNECT\naccept-version:1.2\nheart-beat:x\n\n\x00", message: "invalid heart-beat header"},
		{name: "unknown command", connect: true, input: "PUBLISH\n\n\x00", message: "invalid command"},
		{name: "second CONNECT", connect: true, input: "CONNECT\naccept-version:1.2\n\n\x00", message: "already connected"},
		{name: "server-only frame", connect: true, input: "MESSAGE\n\n\x00", message: "unexpected frame"},
		{name: "unknown destination", connect: true, input: "SEND\ndestination:/exchange/x\nreceipt:r1\n\nx\x00", message: "unknown destination", receipt: "r1", inDetail: "/exchange/x"},
		{name: "wildcard in SEND", connect: true, input: "SEND\ndestination:/topic/a.*\n\nx\x00", message: "invalid destination"},
		{name: "missing destination", connect: true, input: "SEND\n\nx\x00", message: "missing destination header"},
		{name: "missing subscription id", connect: true, input: "SUBSCRIBE\ndestination:/topic/a\n\n\x00", message: "missing id header"},
		{name: "duplicate subscription id", connect: true, input: "SUBSCRIBE\nid:1\ndestination:/topic/a\n\n\x00SUBSCRIBE\nid:1\ndestination:/topic/b\n\n\x00", message: "subscription id already in use"},
		{name: "too many subscriptions", connect: true, input: "SUBSCRIBE\nid:1\ndestination:/topic/a\n\n\x00SUBSCRIBE\nid:2\ndestination:/topic/b\n\n\x00SUBSCRIBE\nid:3\ndestination:/topic/c\n\n\x00", message: "too many subscriptions"},
		{name: "bad ack mode", connect: true, input: "SUBSCRIBE\nid:1\ndestination:/topic/a\nack:sometimes\n\n\x00", message: "invalid ack mode"},
		{name: "unknown subscription", connect: true, input: "UNSUBSCRIBE\nid:nope\nreceipt:u\n\n\x00", message: "subscription not found", receipt: "u"},
		{name: "unknown ack id", connect: true, input: "ACK\nid:12-34\n\n\x00", message: "unknown ack id"},
		{name: "ACK without id", connect: true, input: "ACK\n\n\x00", message: "missing id header"},
		{name: "unknown transaction", connect: true, input: "COMMIT\ntransaction:t\n\n\x00", message: "unknown transaction"},
		{name: "SEND in unknown transaction", connect: true, input: "SEND\ndestination:/topic/a\ntransaction:t\n\nx\x00", message: "unknown transaction"},
		{name: "duplicate transaction", connect: true, input: "BEGIN\ntransaction:t\n\n\x00BEGIN\ntransaction:t\n\n\x00", message: "transaction already open"},
		{name: "too many transactions", connect: true, input: "BEGIN\ntransaction:t\n\n\x00BEGIN\ntransaction:u\n\n\x00", message: "too many transactions"},
		{name: "transaction too large", connect: true, input: "BEGIN\ntransaction:t\n\n\x00" + strings.Repeat("SEND\ndestination:/topic/a\ntransaction:t\n\nx\x00", 3), message: "transaction too large"},
		{name: "body on SUBSCRIBE", connect: true, input: "SUBSCRIBE\nid:1\ndestination:/topic/a\n\nbody\x00", message: "frame must not have a body"},
		{name: "undefined escape", connect: true, input: "SEND\ndestination:/topic/a\nx-h:bad\\t\n\nx\x00", message: "invalid header escape"},
		{name: "malformed header", connect: true, input: "SEND\ndestination:/topic/a\nno colon here\n\nx\x00", message: "malformed header"},
		{name: "bad content-length", connect: true, input: "SEND\ndestination:/topic/a\ncontent-length:ten\n\nx\x00", message: "invalid content-length"},
		{name: "content-length mismatch", connect: true, input: "SEND\ndestination:/topic/a\ncontent-length:2\n\nxyz\x00", message: "frame does not end with NUL after content-length bytes"},
		{name: "content-length over limit", connect: true, input: "SEND\ndestination:/topic/a\ncontent-length:4294967296\n\n", message: "frame too large", code: websocket.StatusMessageTooBig},
		{name: "frame too large", connect: true, input: "SEND\ndestination:/topic/a\n\n" + strings.Repeat("x", 70<<10), message: "frame too large", code: websocket.StatusMessageTooBig},
		{name: "too many headers", connect: true, input: "SEND\ndestination:/topic/a\n" + strings.Repeat("h:v\n", 30) + "\nx\x00", message: "too many headers"},
		{name: "header line too long", connect: true, input: "SEND\ndestination:/topic/a\nh:" + strings.Repeat("v", 2<<10), message: "header line too long"},
		{name: "queue bytes full", connect: true, input: "SEND\ndestination:/queue/bytes.{tr}\n\n" + strings.Repeat("b", 60) + "\x00SEND\ndestination:/queue/bytes.{tr}\nreceipt:qb\n\n" + strings.Repeat("b", 60) + "\x00", message: `queue "/queue/bytes.{tr}" is full (100 bytes)`, receipt: "qb", code: websocket.StatusTryAgainLater},
		{name: "queue full", connect: true, input: "SEND\ndestination:/queue/full-{tr}\n\n1\x00SEND\ndestination:/queue/full-{tr}\nreceipt:q\n\n2\x00", message: `queue "/queue/full-{tr}" is full (1 messages)`, receipt: "q", code: websocket.StatusTryAgainLater},
	}
	ts := startServer(t, limits)
	bystander := ts.rawTCP(t)
	bystander.connect("1.2")
	bystander.send("SUBSCRIBE\nid:b\ndestination:/topic/alive\n\n\x00")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, tr := range []string{"tcp", "ws"} {
				c := ts.rawOver(t, tr)
				if tc.connect {
					c.connect("1.2")
				}
				c.send(strings.ReplaceAll(tc.input, "{tr}", tr))
				wantMessage := strings.ReplaceAll(tc.message, "{tr}", tr)
				for {
					f := c.next()
					if f.Command == "RECEIPT" {
						continue // frames before the bad one may have asked for receipts
					}
					if f.Command != "ERROR" {
						t.Fatalf("%s: got %s, want ERROR", tr, f)
					}
					if got := f.Get("message"); got != wantMessage {
						t.Fatalf("%s: ERROR message %q, want %q (%s)", tr, got, wantMessage, f)
					}
					if got := f.Get("receipt-id"); got != tc.receipt {
						t.Fatalf("%s: receipt-id %q, want %q", tr, got, tc.receipt)
					}
					if !strings.Contains(string(f.Body), tc.inDetail) {
						t.Fatalf("%s: ERROR body %q lacks %q", tr, f.Body, tc.inDetail)
					}
					break
				}
				c.expectClosed()
				if tr == "ws" {
					want := tc.code
					if want == 0 {
						want = websocket.StatusPolicyViolation
					}
					if code, reason := c.closeInfo(); code != want || reason != wantMessage {
						t.Fatalf("ws: closed with %d %q, want %d %q", code, reason, want, wantMessage)
					}
				}
			}
			// The bystander still works.
			bystander.send("SEND\ndestination:/topic/alive\nreceipt:ping\n\n" + tc.name + "\x00")
			if m := bystander.expect("MESSAGE"); string(m.Body) != tc.name {
				t.Fatalf("bystander got %s", m)
			}
			bystander.expect("RECEIPT")
		})
	}
}
