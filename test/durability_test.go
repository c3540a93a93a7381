package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stompd/stompd/stompws/frame"
)

// TestDurableQueueSurvivesKill runs the binary with -data-dir, kills it with SIGKILL in the middle of a
// consumer's work and starts it again on the same directory: every message whose SEND got a RECEIPT and
// whose ACK did not comes back, those that had been delivered marked redelivered:true, the acknowledged
// one does not, the SENDs of a transaction never committed do not, and nothing comes twice.
func TestDurableQueueSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-data-dir", dir)
	ts := p.clients(stompAddr)

	pub := ts.rawOver(t, "tcp")
	pub.connect("1.2")
	for i := 1; i <= 10; i++ {
		pub.send(fmt.Sprintf("SEND\ndestination:/queue/durable\nreceipt:r%d\n\nm%d\x00", i, i))
		if f := pub.expect(frame.RECEIPT); f.Get("receipt-id") != fmt.Sprintf("r%d", i) {
			t.Fatalf("RECEIPT %s", f)
		}
	}
	pub.send("BEGIN\ntransaction:open\n\n\x00")
	pub.send("SEND\ndestination:/queue/durable\ntransaction:open\n\nuncommitted 1\x00")
	pub.send("SEND\ndestination:/queue/durable\ntransaction:open\n\nuncommitted 2\x00")
	pub.send("SEND\ndestination:/topic/sync\nreceipt:sync\n\n\x00")
	pub.expect(frame.RECEIPT)

	con := ts.rawOver(t, "ws")
	con.connect("1.2")
	con.send("SUBSCRIBE\nid:1\ndestination:/queue/durable\nack:client-individual\nprefetch-count:3\n\n\x00")
	var delivered []*rawFrame
	for range 3 {
		delivered = append(delivered, con.expect(frame.MESSAGE))
	}
	if got := frameBodies(delivered); got != "m1 m2 m3" {
		t.Fatalf("first deliveries %q", got)
	}
	// The ACK makes room for m4, which may come before or after the ACK's RECEIPT; then the window of
	// three (m2, m3, m4) is full and nothing more comes.
	con.send("ACK\nid:" + delivered[0].Get("ack") + "\nreceipt:acked\n\n\x00")
	for receipted := false; !receipted || len(delivered) < 4; {
		switch f := con.next(); f.Command {
		case frame.RECEIPT:
			receipted = true
		case frame.MESSAGE:
			delivered = append(delivered, f)
		default:
			t.Fatalf("unexpected %s", f)
		}
	}
	if got := frameBodies(delivered); got != "m1 m2 m3 m4" {
		t.Fatalf("deliveries before the kill %q", got)
	}

	if n := scrapeValue(t, p.URL()+"/metrics", "stompd_store_write_seconds_count"); n != 10 {
		t.Errorf("stompd_store_write_seconds_count = %v, want the 10 stored SENDs", n)
	}
	p.kill()
	p.start()
	if n := scrapeValue(t, p.URL()+"/metrics", "stompd_store_messages"); n != 9 {
		t.Errorf("stompd_store_messages = %v after the restart, want the 9 unacknowledged", n)
	}

	after := ts.rawOver(t, "tcp")
	after.connect("1.2")
	after.send("SUBSCRIBE\nid:1\ndestination:/queue/durable\n\n\x00")
	var back []*rawFrame
	for range 9 {
		back = append(back, after.expect(frame.MESSAGE))
	}
	if got := frameBodies(back); got != "m2* m3* m4* m5 m6 m7 m8 m9 m10" {
		t.Errorf("after kill -9 and restart: %q, want m2* m3* m4* m5 … m10 (* = redelivered:true)", got)
	}
	select {
	case f := <-after.frames:
		t.Errorf("one more frame after the nine: %s", f)
	case <-time.After(300 * time.Millisecond):
	}
	waitFor(t, "the auto-acked messages to leave the store", func() bool {
		return scrapeValue(t, p.URL()+"/metrics", "stompd_store_messages") == 0
	})
}

// frameBodies lists the bodies of MESSAGE frames, a * marking redelivered:true.
func frameBodies(fs []*rawFrame) string {
	var s []string
	for _, f := range fs {
		b := string(f.Body)
		if f.Get("redelivered") == "true" {
			b += "*"
		}
		s = append(s, b)
	}
	return strings.Join(s, " ")
}
