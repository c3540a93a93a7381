package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/stompd/stompd/broker/chat"
	"github.com/stompd/stompd/broker/natsengine"
	"github.com/stompd/stompd/broker/stocks"
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
	if n := scrapeValue(t, p.URL()+"/metrics", `stompd_store_messages{kind="queue"}`); n != 9 {
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
		return scrapeValue(t, p.URL()+"/metrics", `stompd_store_messages{kind="queue"}`) == 0
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

// TestDurableStoreFull: with -max-store-bytes, a SEND the store cannot take gets an ERROR naming the
// queue and the cause; everything accepted before is delivered; topics keep working meanwhile;
// /readyz stays ready and says what is wrong; once consumers have drained the queue, SENDs are taken
// again.
func TestDurableStoreFull(t *testing.T) {
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-data-dir", t.TempDir(),
		"-max-store-bytes", "64KiB")
	ts := p.clients(stompAddr)
	body := strings.Repeat("f", 1024)
	pub := ts.rawOver(t, "tcp")
	pub.connect("1.2")
	accepted := 0
	for ; accepted < 200; accepted++ {
		pub.send(fmt.Sprintf("SEND\ndestination:/queue/full\nreceipt:r%d\n\n%d:%s\x00", accepted, accepted, body))
		if f := pub.next(); f.Command != frame.RECEIPT {
			if msg := f.Get("message"); !strings.Contains(msg, `queue "/queue/full"`) || !strings.Contains(msg, "store unavailable") {
				t.Fatalf("after %d stored: %s", accepted, f)
			}
			pub.expectClosed()
			break
		}
	}
	if accepted == 0 || accepted == 200 {
		t.Fatalf("%d messages of 1 KiB accepted under a 64 KiB store bound", accepted)
	}
	resp, err := http.Get(p.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(ready), "ready\n") || !strings.Contains(string(ready), "store") {
		t.Errorf("/readyz = %d %q, want ready and the store's problem", resp.StatusCode, ready)
	}
	// Topics do not depend on the store.
	c := ts.dialTCP(t)
	topic, _ := c.Subscribe("/topic/still", stomp.AckAuto)
	if err := c.Send("/topic/still", "", []byte("up"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, topic); string(m.Body) != "up" {
		t.Fatalf("topic message %q", m.Body)
	}
	// Everything accepted is delivered, once.
	con := ts.rawOver(t, "tcp")
	con.connect("1.2")
	con.send("SUBSCRIBE\nid:1\ndestination:/queue/full\n\n\x00")
	for i := range accepted {
		f := con.expect(frame.MESSAGE)
		if want := fmt.Sprintf("%d:", i); !strings.HasPrefix(string(f.Body), want) {
			t.Fatalf("message %d: %.10q", i, f.Body)
		}
	}
	waitFor(t, "the store to empty", func() bool {
		return scrapeValue(t, p.URL()+"/metrics", `stompd_store_messages{kind="queue"}`) == 0
	})
	again := ts.rawOver(t, "tcp")
	again.connect("1.2")
	again.send("SEND\ndestination:/queue/full\nreceipt:again\n\nagain\x00")
	again.expect(frame.RECEIPT)
	// SENDs without a receipt are not waited for, but a refusal still ends in an ERROR naming it. The
	// consumer goes first, so that nothing drains the queue while it fills up again.
	con.send("UNSUBSCRIBE\nid:1\nreceipt:gone\n\n\x00")
	for f := con.next(); f.Command != frame.RECEIPT; f = con.next() { // "again" may come first
		if f.Command != frame.MESSAGE {
			t.Fatalf("before the UNSUBSCRIBE's RECEIPT: %s", f)
		}
	}
	blind := ts.rawOver(t, "ws")
	blind.connect("1.2")
	for i := range 200 {
		if err := blind.write([]byte(fmt.Sprintf("SEND\ndestination:/queue/full\n\n%d:%s\x00", i, body)), false); err != nil {
			break // the server has closed the connection after its ERROR
		}
	}
	if f := blind.expect(frame.ERROR); !strings.Contains(f.Get("message"), "store unavailable") {
		t.Errorf("ERROR for a SEND without a receipt the store refused: %s", f)
	}
	if n := scrapeValue(t, p.URL()+"/metrics", `stompd_errors_sent_total{reason="store_unavailable"}`); n != 2 {
		t.Errorf("errors_sent{reason=store_unavailable} = %v, want 2", n)
	}
}

// TestDataDirRefusals: a data directory that cannot be used stops stompd at start with one line naming
// the directory and the cause, and exit status 2: another stompd owns it, it cannot be created, or
// the store's files in it cannot be read (never replaced by an empty store).
func TestDataDirRefusals(t *testing.T) {
	run := func(dir string) (int, string) {
		t.Helper()
		cmd := exec.Command(stompdBinary(t), "-data-dir", dir, "-http-addr", "127.0.0.1:0", "-stomp-addr", "127.0.0.1:0",
			"-log-format", "json")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("stompd -data-dir %s still running after 30 s", dir)
		}
		var last string
		for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			if !strings.HasPrefix(line, "{") { // not a JSON log line
				last += line + "\n"
			}
		}
		return cmd.ProcessState.ExitCode(), strings.TrimSpace(last)
	}

	owned := t.TempDir()
	stompAddr := freeLoopbackAddr(t)
	startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-data-dir", owned)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := t.TempDir()
	e, err := natsengine.Start(natsengine.Config{Dir: corrupt})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()

	for _, tc := range []struct {
		name, dir, want string
		prepare         func()
	}{
		{"owned by another stompd", owned, "in use by another stompd", nil},
		{"cannot be created", filepath.Join(file, "data"), "cannot be created", nil},
		{"unreadable store", corrupt, "cannot read", func() {
			meta := filepath.Join(corrupt, "jetstream", "$G", "streams", "QUEUES", "meta.inf")
			if err := os.WriteFile(meta, []byte("garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prepare != nil {
				tc.prepare()
			}
			code, out := run(tc.dir)
			if code != 2 || strings.Count(out, "\n") != 0 || !strings.HasPrefix(out, "stompd: ") ||
				!strings.Contains(out, tc.want) || strings.Contains(out, "panic") {
				t.Errorf("exit %d, output %q; want status 2 and one line saying %q", code, out, tc.want)
			}
		})
	}
}

// TestRetainedSurvivesRestart: with -data-dir the retained messages survive a restart: the chat shows
// its history to a newcomer after it, and the stock feed goes on from its last prices rather than
// from its start prices.
func TestRetainedSurvivesRestart(t *testing.T) {
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stomp-addr", stompAddr, "-data-dir", t.TempDir(),
		"-stocks-min-interval", "10ms", "-stocks-max-interval", "20ms")
	ts := p.clients(stompAddr)
	c := ts.dialTCP(t, stomp.ConnOpt.Header("name", "Alice"))
	for _, text := range []string{"first", "second", "third"} {
		if err := c.Send("/app/chat", "text/plain", []byte(text), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond) // dozens of ticks move the prices away from their start
	p.Restart()

	newcomer := ts.dialTCP(t)
	history, _ := newcomer.Subscribe("/topic/chat", stomp.AckAuto)
	var texts []string
	for len(texts) < 3 {
		m := recv(t, history)
		var e chat.Event
		if err := json.Unmarshal(m.Body, &e); err != nil {
			t.Fatal(err)
		}
		if e.Type == "message" {
			if m.Header.Get("history") != "true" {
				t.Errorf("%q came without history:true", e.Text)
			}
			texts = append(texts, e.Text)
		}
	}
	if strings.Join(texts, " ") != "first second third" {
		t.Errorf("chat history after the restart: %q", texts)
	}
	moved := 0
	for _, s := range stocks.DefaultSymbols {
		sub, _ := newcomer.Subscribe("/topic/stocks."+s.Name, stomp.AckAuto)
		var q stocks.Quote
		if err := json.Unmarshal(recv(t, sub).Body, &q); err != nil {
			t.Fatal(err)
		}
		if int64(math.Round(q.Price*100)) != s.Cents {
			moved++
		}
	}
	if moved == 0 {
		t.Error("every price is back at its start price after the restart")
	}
}

// TestDurableDisconnectReceipt: SENDs without a receipt are not waited for, but a DISCONNECT's RECEIPT
// says every earlier frame was taken: after it, SIGKILL loses none of them.
func TestDurableDisconnectReceipt(t *testing.T) {
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-data-dir", t.TempDir())
	ts := p.clients(stompAddr)
	pub := ts.rawOver(t, "tcp")
	pub.connect("1.2")
	const n = 2000
	var frames strings.Builder
	for i := range n {
		fmt.Fprintf(&frames, "SEND\ndestination:/queue/blind\n\n%d\x00", i)
	}
	frames.WriteString("DISCONNECT\nreceipt:bye\n\n\x00")
	pub.send(frames.String())
	pub.expect(frame.RECEIPT)
	p.kill()
	p.start()
	con := ts.rawOver(t, "tcp")
	con.connect("1.2")
	con.send("SUBSCRIBE\nid:1\ndestination:/queue/blind\n\n\x00")
	for i := range n {
		if f := con.expect(frame.MESSAGE); string(f.Body) != strconv.Itoa(i) {
			t.Fatalf("message %d after the restart: %q", i, f.Body)
		}
	}
}
