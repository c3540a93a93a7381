package test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3"
)

// TestHostileInputs sends the inputs an attacker would try, over TCP and WebSocket, and checks the exact
// answer while a bystander session on the same server keeps working. The default limits apply (4 MiB
// frames, 1000 headers, 100 KiB header lines, 1000 subscriptions).
func TestHostileInputs(t *testing.T) {
	ts := startServer(t)
	bystander := ts.dialTCP(t)
	alive, _ := bystander.Subscribe("/topic/alive", stomp.AckAuto)
	waitFor(t, "bystander", func() bool { return ts.Broker.Stats().Subscriptions == 1 })
	stillAlive := func(t *testing.T, tag string) {
		t.Helper()
		if err := bystander.Send("/topic/alive", "", []byte(tag), stomp.SendOpt.Receipt); err != nil {
			t.Fatalf("bystander: %v", err)
		}
		if m := recv(t, alive); string(m.Body) != tag {
			t.Fatalf("bystander got %q", m.Body)
		}
	}

	manySubscribes := func() string {
		var b strings.Builder
		for i := 0; i < 10000; i++ {
			b.WriteString("SUBSCRIBE\nid:" + strconv.Itoa(i) + "\ndestination:/topic/s" + strconv.Itoa(i) + "\n\n\x00")
		}
		return b.String()
	}
	cases := []struct {
		name, input, message string
	}{
		{"1,000,000-byte header line", "SEND\ndestination:/topic/a\nh:" + strings.Repeat("v", 1_000_000) + "\n\nx\x00", "header line too long"},
		{"10,000 headers", "SEND\ndestination:/topic/a\n" + strings.Repeat("h:v\n", 10000) + "\nx\x00", "too many headers"},
		{"content-length of 4 GiB", "SEND\ndestination:/topic/a\ncontent-length:4294967296\n\n", "frame too large"},
		{"never-ending frame", "SEND\ndestination:/topic/a\n\n" + strings.Repeat("z", 5<<20), "frame too large"},
		{"10,000 SUBSCRIBEs", manySubscribes(), "too many subscriptions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, tr := range []string{"tcp", "ws"} {
				c := ts.rawOver(t, tr)
				c.connect("1.2")
				c.send(tc.input)
				c.expectError(tc.message)
			}
			stillAlive(t, tc.name)
			waitFor(t, "only the bystander's subscription left", func() bool { return ts.Broker.Stats().Subscriptions == 1 })
		})
	}

	t.Run("frame split one byte per WebSocket message", func(t *testing.T) {
		c := ts.rawWS(t, "v12.stomp")
		c.connect("1.2")
		input := "SUBSCRIBE\nid:1\ndestination:/topic/bytes\nreceipt:r\n\n\x00"
		for i := 0; i < len(input); i++ {
			c.send(input[i : i+1])
		}
		c.expect("RECEIPT")
		stillAlive(t, "split")
	})

	t.Run("invalid UTF-8 in a text message", func(t *testing.T) {
		c := ts.rawWS(t, "v12.stomp")
		c.connect("1.2")
		c.send("SUBSCRIBE\nid:1\ndestination:/topic/utf\nreceipt:r\n\n\x00")
		c.expect("RECEIPT")
		// A browser would never send this; the broker accepts the bytes and passes them on as binary.
		c.send("SEND\ndestination:/topic/utf\ncontent-length:2\n\n\xff\xfe\x00")
		if m := c.expect("MESSAGE"); !bytes.Equal(m.Body, []byte{0xff, 0xfe}) {
			t.Fatalf("body %q", m.Body)
		}
	})

	t.Run("ACK for another session's message", func(t *testing.T) {
		owner := ts.rawTCP(t)
		owner.connect("1.2")
		owner.send("SUBSCRIBE\nid:q\ndestination:/queue/mine\nack:client-individual\nreceipt:r\n\n\x00")
		owner.expect("RECEIPT")
		owner.send("SEND\ndestination:/queue/mine\n\njob\x00")
		ackID := owner.expect("MESSAGE").Get("ack")
		thief := ts.rawTCP(t)
		thief.connect("1.2")
		thief.send("ACK\nid:" + ackID + "\n\n\x00")
		thief.expectError("unknown ack id")
		if _, unacked, _ := ts.Broker.QueueDepth("/queue/mine"); unacked != 1 {
			t.Fatalf("another session's ACK settled the message (unacked %d)", unacked)
		}
		owner.send("ACK\nid:" + ackID + "\nreceipt:a\n\n\x00")
		owner.expect("RECEIPT")
	})

	t.Run("BEGIN without COMMIT at disconnect", func(t *testing.T) {
		sub := ts.rawTCP(t)
		sub.connect("1.2")
		sub.send("SUBSCRIBE\nid:1\ndestination:/topic/tx-abandoned\nreceipt:r\n\n\x00")
		sub.expect("RECEIPT")
		c := ts.rawTCP(t)
		c.connect("1.2")
		c.send("BEGIN\ntransaction:t\n\n\x00SEND\ndestination:/topic/tx-abandoned\ntransaction:t\n\nnever\x00DISCONNECT\nreceipt:bye\n\n\x00")
		c.expect("RECEIPT")
		c.expectClosed()
		// The abandoned transaction published nothing: the next message the subscriber sees is this one.
		sub.send("SEND\ndestination:/topic/tx-abandoned\n\nafter\x00")
		if m := sub.expect("MESSAGE"); string(m.Body) != "after" {
			t.Fatalf("subscriber got %q from an abandoned transaction", m.Body)
		}
	})
}
