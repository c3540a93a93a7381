package test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/metrics"
)

// TestMemoryAlarmHoldsPublishers drives the memory alarm with a stand-in for the live heap: past the
// high watermark a SEND is held (no RECEIPT, the connection's reading waits, its heart-beat silence is
// excused) while consumers and other connections go on; it is taken once the heap falls below the low
// watermark, or refused with an ERROR naming the limit after the hold timeout.
func TestMemoryAlarmHoldsPublishers(t *testing.T) {
	const limit = 1000 // bytes: high watermark 600, low 500
	var live atomic.Uint64
	reg := prometheus.NewRegistry()
	ts := startServer(t, func(c *serverConfig) {
		c.heartBeats = true
		c.opts.HeartBeatMin = 50 * time.Millisecond
		c.opts.MaxMemory = limit
		c.opts.MemorySample = live.Load
		c.opts.MemoryHoldTimeout = 2 * time.Second
		c.opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: "test"})
	})
	gauge := func(name string) float64 { return metricValue(t, reg, name) }
	consumer := ts.dialTCP(t)
	jobs, err := consumer.Subscribe("/queue/jobs", stomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	pub := ts.rawWS(t, "v12.stomp")
	pub.connect("1.2", "heart-beat:100,0") // promises beats every 100 ms, and will be silent while held
	pub.send("SEND\ndestination:/queue/jobs\nreceipt:before\n\n1\x00")
	pub.expect("RECEIPT")
	first := recv(t, jobs)

	live.Store(700)
	waitFor(t, "the alarm", func() bool { return gauge("stompd_memory_alarm") == 1 })
	pub.send("SEND\ndestination:/queue/jobs\nreceipt:held\n\n2\x00")
	waitFor(t, "the SEND to be held", func() bool { return gauge("stompd_publishers_held") == 1 })
	// Consumers and their ACKs go on; so does a connection that does not publish.
	if err := consumer.Ack(first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ACK", func() bool { _, unacked, _ := ts.Broker.QueueDepth("/queue/jobs"); return unacked == 0 })
	other := ts.rawTCP(t)
	other.connect("1.2")
	other.send("SUBSCRIBE\nid:s\ndestination:/topic/alive\nreceipt:subscribed\n\n\x00")
	other.expect("RECEIPT")
	live.Store(550) // between the watermarks: still held
	time.Sleep(300 * time.Millisecond)
	select {
	case f := <-pub.frames:
		t.Fatalf("got %s while the heap was still above the low watermark", f)
	default:
	}
	live.Store(400)
	if f := pub.expect("RECEIPT"); f.Get("receipt-id") != "held" {
		t.Fatalf("RECEIPT %s, want the held SEND's", f)
	}
	if m := recv(t, jobs); string(m.Body) != "2" {
		t.Fatalf("got %q, want the held message", m.Body)
	}
	if gauge("stompd_memory_alarm") != 0 || gauge("stompd_publishers_held") != 0 {
		t.Fatalf("alarm %v, held %v after the heap fell", gauge("stompd_memory_alarm"), gauge("stompd_publishers_held"))
	}

	// Held past the timeout: refused, not accepted.
	live.Store(900)
	waitFor(t, "the alarm", func() bool { return gauge("stompd_memory_alarm") == 1 })
	start := time.Now()
	pub.send("SEND\ndestination:/queue/jobs\nreceipt:refused\n\n3\x00")
	f := pub.expectError("memory limit reached (max-memory 1000 bytes)")
	if f.Get("receipt-id") != "refused" {
		t.Errorf("ERROR without the SEND's receipt-id: %s", f)
	}
	if held := time.Since(start); held < 2*time.Second {
		t.Errorf("refused after %s, before the 2 s hold timeout", held)
	}
	if code, _ := pub.closeInfo(); code != websocket.StatusTryAgainLater {
		t.Errorf("WebSocket closed with %d, want 1013", code)
	}
	if got := metricValue(t, reg, "stompd_errors_sent_total", "reason", "memory_limit"); got != 1 {
		t.Errorf("stompd_errors_sent_total{reason=memory_limit} = %v, want 1", got)
	}
	if ready, _, _ := ts.Broker.QueueDepth("/queue/jobs"); ready != 0 {
		t.Errorf("the refused message was queued (%d ready)", ready)
	}
}

// TestMemoryFlood: the flood against the binary under -max-memory 96MiB, queue limits out of
// the way: 1 MiB SENDs, each with a receipt, to a queue nobody consumes, from two connections. The
// alarm holds them back and then refuses them with an ERROR naming the limit; the broker's RSS stays
// near the limit; a bystander still round-trips; every receipted message is then delivered exactly
// once; and once the queue has drained, publishing works again.
func TestMemoryFlood(t *testing.T) {
	const limit = 96 << 20
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-max-memory", strconv.Itoa(limit),
		"-max-queue-bytes", "1GiB", "-max-queue-depth", "1000000", "-memory-hold-timeout", "1s")
	ts := p.clients(stompAddr)
	body := strings.Repeat("m", 1<<20)
	var mu sync.Mutex
	receipted := map[string]bool{}
	var wg sync.WaitGroup
	for f := range 2 {
		flooder := ts.rawOver(t, []string{"tcp", "ws"}[f])
		flooder.connect("1.2")
		wg.Go(func() {
			for i := range 400 {
				id := fmt.Sprintf("%d-%d", f, i)
				flooder.send("SEND\ndestination:/queue/flood\nreceipt:" + id + "\n\n" + id + ":" + body + "\x00")
				fr := flooder.next()
				if fr.Command == "RECEIPT" {
					mu.Lock()
					receipted[id] = true
					mu.Unlock()
					continue
				}
				if fr.Get("message") != fmt.Sprintf("memory limit reached (max-memory %d bytes)", limit) {
					t.Errorf("flooder %d: %s", f, fr)
				}
				return
			}
			t.Errorf("flooder %d sent 400 MiB without being refused", f)
		})
	}
	bystander := ts.dialTCP(t)
	echo, _ := bystander.Subscribe("/topic/echo", stomp.AckAuto)
	wg.Wait()
	rss := processRSS(t, p.cmd.Process.Pid)
	t.Logf("%d MiB accepted before the refusals; broker RSS %d MiB with a %d MiB limit", len(receipted), rss>>20, limit>>20)
	if rss > limit*3/2 {
		t.Errorf("broker RSS %d MiB, over 1.5 × the %d MiB limit", rss>>20, limit>>20)
	}
	// The metrics say where the memory is: the accepted messages, in the queue.
	queued := scrapeValue(t, p.URL()+"/metrics", `stompd_memory_held_bytes{kind="queued"}`)
	if min := float64(len(receipted) << 20); queued < min || queued > min+float64(len(receipted)*64) {
		t.Errorf("stompd_memory_held_bytes{kind=queued} = %v for %d accepted 1 MiB messages", queued, len(receipted))
	}
	// The bystander subscribes and reads; its own publishes wait for the queue to drain below.
	consumer := ts.dialTCP(t)
	flood, _ := consumer.Subscribe("/queue/flood", stomp.AckAuto)
	seen := map[string]int{}
	for range len(receipted) {
		m := recv(t, flood)
		id, _, _ := strings.Cut(string(m.Body[:min(len(m.Body), 16)]), ":")
		seen[id]++
	}
	for id := range receipted {
		if seen[id] != 1 {
			t.Errorf("receipted message %s delivered %d times", id, seen[id])
		}
	}
	noMessage(t, flood, 200*time.Millisecond)
	// The queue has drained: a SEND is taken again (the alarm clears at the next collection).
	if err := bystander.Send("/topic/echo", "", []byte("after"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, echo); string(m.Body) != "after" {
		t.Fatalf("bystander got %q", m.Body)
	}
}

// processRSS reads the resident set of process pid, in bytes.
func processRSS(t *testing.T, pid int) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestMemoryAlarmPublisherThatConsumes: one connection that consumes a queue and publishes on the same
// socket. Under the alarm its SEND is held and the ACK it sent behind the SEND waits too, while its
// deliveries keep arriving; when memory falls, both take effect in order. If memory never falls (here
// only that ACK could have freed it), the hold timeout refuses the SEND and the connection ends, its
// unacknowledged messages go back to the queue: it is never stuck for good.
func TestMemoryAlarmPublisherThatConsumes(t *testing.T) {
	var live atomic.Uint64
	ts := startServer(t, func(c *serverConfig) {
		c.opts.MaxMemory = 1000
		c.opts.MemorySample = live.Load
		c.opts.MemoryHoldTimeout = time.Second
	})
	producer := ts.dialTCP(t)
	c := ts.rawTCP(t)
	c.connect("1.2")
	c.send("SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual\nreceipt:s\n\n\x00")
	c.expect("RECEIPT")
	if err := producer.Send("/queue/work", "", []byte("job 1"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	first := c.expect("MESSAGE")

	live.Store(700)
	waitFor(t, "the alarm", func() bool { return ts.Server.MemoryAlarm() })
	c.send("SEND\ndestination:/topic/out\nreceipt:sent\n\nresult 1\x00ACK\nid:" + first.Get("ack") + "\nreceipt:acked\n\n\x00")
	// Deliveries still reach it while it is held (from the server itself: client SENDs wait too).
	if err := ts.Broker.Publish(&broker.Message{Destination: "/queue/work", Body: []byte("job 2")}); err != nil {
		t.Fatal(err)
	}
	second := c.expect("MESSAGE")
	if string(second.Body) != "job 2" {
		t.Fatalf("got %s while held", second)
	}
	if _, unacked, _ := ts.Broker.QueueDepth("/queue/work"); unacked != 2 {
		t.Fatalf("%d unacked while the ACK waits behind the held SEND, want 2", unacked)
	}
	live.Store(100)
	if f := c.expect("RECEIPT"); f.Get("receipt-id") != "sent" {
		t.Fatalf("first RECEIPT %s, want the SEND's", f)
	}
	if f := c.expect("RECEIPT"); f.Get("receipt-id") != "acked" {
		t.Fatalf("second RECEIPT %s, want the ACK's", f)
	}

	// Memory that never falls: the SEND is refused, the connection ends, job 2 returns to the queue.
	live.Store(900)
	waitFor(t, "the alarm", func() bool { return ts.Server.MemoryAlarm() })
	c.send("SEND\ndestination:/topic/out\nreceipt:stuck\n\nresult 2\x00ACK\nid:" + second.Get("ack") + "\n\n\x00")
	c.expectError("memory limit reached (max-memory 1000 bytes)")
	waitFor(t, "job 2 back in the queue", func() bool {
		ready, unacked, _ := ts.Broker.QueueDepth("/queue/work")
		return ready == 1 && unacked == 0
	})
}

// scrapeValue GETs a Prometheus text exposition and returns the value of the series written exactly
// as series (name and labels), failing the test if it is absent.
func scrapeValue(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("%s not in the scrape", series)
	return 0
}

// TestMemoryManySlowConsumers: thirty subscribers that never read, under -max-memory 96MiB, while a
// publisher sends 256 KiB messages to their topic: each one's outbound queue stops at
// -max-outbound-bytes and it is disconnected as a slow consumer, so the frames queued for them never
// add up past the limit; a subscriber that reads gets every message the publisher had a RECEIPT for.
func TestMemoryManySlowConsumers(t *testing.T) {
	const limit, stuck, messages = 96 << 20, 30, 200
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-max-memory", strconv.Itoa(limit),
		"-memory-hold-timeout", "5s", "-shutdown-timeout", "2s")
	ts := p.clients(stompAddr)
	for range stuck {
		c := ts.rawTCP(t)
		c.connect("1.2")
		c.send("SUBSCRIBE\nid:s\ndestination:/topic/wide\nreceipt:s\n\n\x00")
		c.expect("RECEIPT")
		c.pause()
		t.Cleanup(c.resume) // its reader then sees the connection end, and returns
	}
	reader := ts.dialTCP(t)
	wide, _ := reader.Subscribe("/topic/wide", stomp.AckAuto)
	pub := ts.dialTCP(t)
	body := strings.Repeat("w", 256<<10)
	done := make(chan error, 1)
	go func() {
		for i := range messages {
			if err := pub.Send("/topic/wide", "", []byte(strconv.Itoa(i)+":"+body), stomp.SendOpt.Receipt); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	peak := 0
	for i := range messages {
		m := recv(t, wide)
		if want := strconv.Itoa(i) + ":"; !strings.HasPrefix(string(m.Body[:min(len(m.Body), 12)]), want) {
			t.Fatalf("reader got message %.12q at %d", m.Body, i)
		}
		peak = max(peak, processRSS(t, p.cmd.Process.Pid))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	slow := scrapeValue(t, p.URL()+"/metrics", "stompd_slow_consumer_disconnects_total")
	t.Logf("%d MiB sent to %d stuck subscribers; %v disconnected as slow; peak broker RSS %d MiB", messages/4, stuck, slow, peak>>20)
	if slow != stuck {
		t.Errorf("%v slow-consumer disconnects, want all %d stuck subscribers", slow, stuck)
	}
	if peak > limit*3/2 {
		t.Errorf("peak broker RSS %d MiB, over 1.5 × the %d MiB limit", peak>>20, limit>>20)
	}
}

// TestMemoryRetainedFlood: retained messages never drain, so they have a bound of their own, at most a
// quarter of -max-memory. A client allowed to publish to last-value and history topics floods them with
// 1 MiB messages on ever new destinations under -max-memory 96MiB: it is refused with an ERROR naming
// the bound once 24 MiB are retained, the broker's RSS stays near the limit, and the memory alarm is
// not left on for good: a bystander still publishes, and new subscribers get what was retained.
func TestMemoryRetainedFlood(t *testing.T) {
	const limit = 96 << 20
	config := filepath.Join(t.TempDir(), "stompd.yaml")
	if err := os.WriteFile(config, []byte(`policies:
  - pattern: /topic/last.#
    last-value: true
  - pattern: /topic/hist.#
    history: 10
`), 0o600); err != nil {
		t.Fatal(err)
	}
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-config", config, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr,
		"-max-memory", strconv.Itoa(limit), "-memory-hold-timeout", "2s")
	ts := p.clients(stompAddr)
	body := strings.Repeat("r", 1<<20)
	retained := 0
	for f, prefix := range []string{"/topic/last.", "/topic/hist."} {
		flooder := ts.rawOver(t, []string{"tcp", "ws"}[f])
		flooder.connect("1.2")
		for i := range 200 {
			dest := fmt.Sprintf("%s%d", prefix, i)
			flooder.send("SEND\ndestination:" + dest + "\nreceipt:r\n\n" + body + "\x00")
			if fr := flooder.next(); fr.Command != "RECEIPT" {
				if want := fmt.Sprintf("retained messages limit reached (max-retained-bytes %d)", limit/4); fr.Get("message") != want {
					t.Fatalf("flooder %d: %s, want ERROR %q", f, fr, want)
				}
				break
			}
			retained++
			if i == 199 {
				t.Fatalf("flooder %d retained 200 MiB without being refused", f)
			}
		}
	}
	rss := processRSS(t, p.cmd.Process.Pid)
	held := scrapeValue(t, p.URL()+"/metrics", `stompd_memory_held_bytes{kind="retained"}`)
	t.Logf("%d messages of 1 MiB retained before the refusals (%.1f MiB held); broker RSS %d MiB with a %d MiB limit",
		retained, held/(1<<20), rss>>20, limit>>20)
	if held > limit/4 || retained == 0 {
		t.Errorf("%v bytes retained, want some and at most %d", held, limit/4)
	}
	if rss > limit*3/2 {
		t.Errorf("broker RSS %d MiB, over 1.5 × the %d MiB limit", rss>>20, limit>>20)
	}
	if n := scrapeValue(t, p.URL()+"/metrics", `stompd_errors_sent_total{reason="retained_limit"}`); n != 2 {
		t.Errorf("errors_sent{reason=retained_limit} = %v, want 2", n)
	}
	// Memory is not held for good: a bystander publishes and a new subscriber gets the retained value.
	bystander := ts.dialTCP(t)
	last, _ := bystander.Subscribe("/topic/last.0", stomp.AckAuto)
	if m := recv(t, last); len(m.Body) != 1<<20 || m.Header.Get("retained") != "true" {
		t.Errorf("retained value on subscribe: %d bytes, headers %v", len(m.Body), m.Header)
	}
	if err := bystander.Send("/topic/last.0", "", []byte("small"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, last); string(m.Body) != "small" {
		t.Errorf("bystander's message %q", m.Body)
	}
	if n := scrapeValue(t, p.URL()+"/metrics", "stompd_memory_alarm"); n != 0 {
		t.Errorf("memory alarm %v after the flood, want off", n)
	}
}

// TestMemoryAlarmHoldsPartialFrames: a large frame still arriving is memory the broker holds too. Under
// the alarm, a client that has sent more than 64 KiB of an unfinished frame is not read further until
// the alarm clears, and is refused with ERROR after the hold timeout, so that many connections each
// sending most of a large frame cannot take the heap past the limit.
func TestMemoryAlarmHoldsPartialFrames(t *testing.T) {
	const limit = 1000
	var live atomic.Uint64
	reg := prometheus.NewRegistry()
	ts := startServer(t, func(c *serverConfig) {
		c.opts.MaxMemory = limit
		c.opts.MemorySample = live.Load
		c.opts.MemoryHoldTimeout = time.Second
		c.opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: "test"})
	})
	gauge := func(name string) float64 { return metricValue(t, reg, name) }
	live.Store(700)
	waitFor(t, "the alarm", func() bool { return gauge("stompd_memory_alarm") == 1 })
	body := strings.Repeat("p", 200<<10)
	for _, tr := range []string{"tcp", "ws"} {
		c := ts.rawOver(t, tr)
		c.connect("1.2")
		c.send("SEND\ndestination:/queue/partial\nreceipt:done\n\n" + body[:100<<10])
		waitFor(t, "the partial frame to be held", func() bool { return gauge("stompd_publishers_held") == 1 })
		live.Store(400)
		c.send(body[100<<10:] + "\x00")
		if f := c.expect("RECEIPT"); f.Get("receipt-id") != "done" {
			t.Fatalf("%s: %s", tr, f)
		}
		live.Store(700)
		waitFor(t, "the alarm", func() bool { return gauge("stompd_memory_alarm") == 1 })
		c.send("SEND\ndestination:/queue/partial\n\n" + body[:100<<10])
		c.expectError("memory limit reached (max-memory 1000 bytes)")
	}
	if ready, _, _ := ts.Broker.QueueDepth("/queue/partial"); ready != 2 {
		t.Errorf("%d messages queued, want the two that completed after the alarm cleared", ready)
	}
}
