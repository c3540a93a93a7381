package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stompd/stompd/stompws/frame"
)

func TestStampRoundTrip(t *testing.T) {
	cases := []struct {
		pub  int
		seq  uint64
		sent int64
	}{
		{0, 0, 0},
		{1, 1, 1},
		{maxPublishers - 1, maxSeq, 1<<52 - 1},
		{42, 123456789, int64(90 * time.Second)},
	}
	for _, tc := range cases {
		b := make([]byte, stampLen+3)
		putStamp(b, tc.pub, tc.seq, tc.sent)
		pub, seq, sent, ok := parseStamp(b)
		if !ok || pub != tc.pub || seq != tc.seq || sent != tc.sent {
			t.Errorf("stamp %q read back as %d %d %d %v, want %d %d %d", b, pub, seq, sent, ok, tc.pub, tc.seq, tc.sent)
		}
	}
}

func TestParseStampRejects(t *testing.T) {
	good := make([]byte, stampLen)
	putStamp(good, 0xab3, 0xcd4, 0xef5)
	cases := map[string][]byte{
		"empty":             nil,
		"short":             good[:stampLen-1],
		"upper-case hex":    []byte(strings.ToUpper(string(good))),
		"not hex":           []byte(strings.Replace(string(good), "3", "g", 1)),
		"missing separator": []byte(strings.Replace(string(good), " ", "0", 1)),
		"plain text":        []byte("hello, this is not a bench message at all"),
	}
	for name, body := range cases {
		if _, _, _, ok := parseStamp(body); ok {
			t.Errorf("%s: %q accepted", name, body)
		}
	}
}

func TestSeqTracker(t *testing.T) {
	cases := []struct {
		name                         string
		arrivals                     []uint64
		published                    int64
		lost, duplicated, outOfOrder int64
	}{
		{name: "in order", arrivals: []uint64{0, 1, 2, 3}, published: 4},
		{name: "nothing", published: 3, lost: 3},
		{name: "gap", arrivals: []uint64{0, 1, 3}, published: 4, lost: 1},
		{name: "tail missing", arrivals: []uint64{0, 1}, published: 4, lost: 2},
		{name: "duplicate", arrivals: []uint64{0, 1, 1, 2}, published: 3, duplicated: 1},
		{name: "late", arrivals: []uint64{0, 2, 1}, published: 3, outOfOrder: 1},
		{name: "late duplicate", arrivals: []uint64{0, 2, 1, 2, 1}, published: 3, outOfOrder: 1, duplicated: 2},
		{name: "far apart", arrivals: []uint64{0, 5000, 64, 63}, published: 5001, lost: 4997, outOfOrder: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tr seqTracker
			for _, s := range tc.arrivals {
				tr.observe(s)
			}
			if got := tr.lostFrom(tc.published); got != tc.lost || tr.duplicated != tc.duplicated || tr.outOfOrder != tc.outOfOrder {
				t.Errorf("lost %d duplicated %d out of order %d; want %d %d %d", got, tr.duplicated, tr.outOfOrder, tc.lost, tc.duplicated, tc.outOfOrder)
			}
		})
	}
}

func TestSharedDelivery(t *testing.T) {
	cases := []struct {
		name                         string
		consumers                    [][]uint64
		published                    int64
		lost, duplicated, outOfOrder int64
	}{
		{name: "split", consumers: [][]uint64{{0, 2, 4}, {1, 3}}, published: 5},
		{name: "one lost", consumers: [][]uint64{{0, 2}, {1}}, published: 4, lost: 1},
		{name: "delivered twice", consumers: [][]uint64{{0, 1}, {1, 2}}, published: 3, duplicated: 1},
		{name: "twice to one consumer", consumers: [][]uint64{{0, 0}, {1}}, published: 2, duplicated: 1},
		{name: "reordered in a consumer", consumers: [][]uint64{{2, 0}, {1}}, published: 3, outOfOrder: 1},
		{name: "uneven lengths", consumers: [][]uint64{{0}, {1, 300}, {}}, published: 301, lost: 298},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d sharedDelivery
			for _, arrivals := range tc.consumers {
				var tr seqTracker
				for _, s := range arrivals {
					tr.observe(s)
				}
				d.add(&tr)
			}
			if got := d.lostFrom(tc.published); got != tc.lost || d.duplicated != tc.duplicated || d.outOfOrder != tc.outOfOrder {
				t.Errorf("lost %d duplicated %d out of order %d; want %d %d %d", got, d.duplicated, d.outOfOrder, tc.lost, tc.duplicated, tc.outOfOrder)
			}
		})
	}
}

func TestFlowWaitsForSlowestReceiver(t *testing.T) {
	f := newFlow(10, 3)
	if room := f.room(0); room != 10 {
		t.Fatalf("room %d at the start, want 10", room)
	}
	// Slots 0 and 1 have everything; slot 2 is 10 behind, so the window is full.
	f.deliver(0, 10)
	for range 10 {
		f.deliver(1, 1)
	}
	if room := f.room(10); room != 0 {
		t.Fatalf("room %d with one receiver 10 behind, want 0", room)
	}
	got := make(chan int64, 1)
	go func() { got <- f.wait(context.Background(), nil, 10, 4) }()
	f.deliver(2, 1)
	f.deliver(2, 2) // not yet enough for 4 messages of room
	select {
	case room := <-got:
		t.Fatalf("wait returned %d after 3 of 4 deliveries", room)
	default:
	}
	f.deliver(2, 1)
	select {
	case room := <-got:
		if room != 4 {
			t.Errorf("wait returned room %d, want 4", room)
		}
	case <-time.After(waitTimeout):
		t.Fatal("wait did not return once the slowest receiver caught up")
	}
}

func TestFlowWaitStops(t *testing.T) {
	f := newFlow(1, 1)
	stop := make(chan struct{})
	got := make(chan int64, 1)
	go func() { got <- f.wait(context.Background(), stop, 1, 1) }()
	close(stop)
	select {
	case room := <-got:
		if room != 0 {
			t.Errorf("wait returned %d after stop, want 0", room)
		}
	case <-time.After(waitTimeout):
		t.Fatal("wait ignored stop")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if room := f.wait(ctx, nil, 1, 1); room != 0 {
		t.Errorf("wait returned %d with ctx done, want 0", room)
	}
}

func TestBenchPacer(t *testing.T) {
	second := int64(time.Second)
	p := newBenchPacer(100, 0) // one message per 10 ms, bursts of 1
	cases := []struct {
		now, sent, want int64
	}{
		{now: 0, sent: 0, want: 1},
		{now: second / 200, sent: 1, want: 0},
		{now: second / 100, sent: 1, want: 1},
		{now: 5 * second, sent: 2, want: 1}, // after a stall, one burst, not 498 messages
		{now: 5*second + 1, sent: 3, want: 0},
	}
	for _, tc := range cases {
		if got := p.due(tc.now, tc.sent); got != tc.want {
			t.Errorf("due(%d, %d) = %d, want %d", tc.now, tc.sent, got, tc.want)
		}
	}
	if newBenchPacer(0, 0) != nil {
		t.Error("rate 0 must give no pacer")
	}
	if p := newBenchPacer(10_000, 0); p.due(second, 0) != 100 {
		t.Errorf("10000/s after a second: due %d, want a burst of 100", p.due(second, 0))
	}
}

func TestProcParsing(t *testing.T) {
	stat := []byte("4242 (my (odd) broker) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 1234 5678 910 18446744073709551615\n")
	if ticks, err := parseStatCPUTicks(stat); err != nil || ticks != 325 {
		t.Errorf("ticks %d, %v; want 325", ticks, err)
	}
	for _, bad := range []string{"", "4242 no parens S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 x 75"} {
		if _, err := parseStatCPUTicks([]byte(bad)); !errors.Is(err, errProcFormat) {
			t.Errorf("%q: err %v, want errProcFormat", bad, err)
		}
	}
	status := []byte("Name:\tstompd\nVmPeak:\t  9000 kB\nVmRSS:\t    1536 kB\nThreads:\t7\n")
	if rss, err := parseStatusRSS(status); err != nil || rss != 1536*1024 {
		t.Errorf("rss %d, %v; want %d", rss, err, 1536*1024)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tlots kB\n"} {
		if _, err := parseStatusRSS([]byte(bad)); !errors.Is(err, errProcFormat) {
			t.Errorf("%q: err %v, want errProcFormat", bad, err)
		}
	}
}

func TestBenchVerdict(t *testing.T) {
	cases := []struct {
		name  string
		rep   benchReport
		queue bool
		want  string // "" for success
	}{
		{name: "clean", rep: benchReport{Delivered: 10}},
		{name: "lost", rep: benchReport{Lost: 2}, want: "2 lost"},
		{name: "duplicated", rep: benchReport{Duplicated: 1}, want: "1 duplicated"},
		{name: "reordered topic", rep: benchReport{OutOfOrder: 3}, want: "3 out of order on a topic"},
		{name: "reordered queue", rep: benchReport{OutOfOrder: 3}, queue: true},
		{name: "errors", rep: benchReport{Errors: 1, firstError: "bad body"}, want: "1 errors (first: bad body)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rep.verdict(tc.queue)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("verdict %v, want success", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != exitFailure):
				t.Errorf("verdict %v (exit %d), want %q and exit %d", err, exitCode(err), tc.want, exitFailure)
			}
		})
	}
}

func TestGrouped(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := grouped(n); got != want {
			t.Errorf("grouped(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCarriesHeader(t *testing.T) {
	m := carriesHeader("receipt", "r-1")
	writes := []string{"SEND\ndestination:/q\nrec", "eipt:r-", "1\n\nbody\x00"}
	var found []bool
	for _, w := range writes {
		found = append(found, m([]byte(w)))
	}
	if found[0] || found[1] || !found[2] {
		t.Errorf("matches %v, want only the write that completes the line", found)
	}
	if m := carriesHeader("receipt", "r-1"); m([]byte("SEND\nreceipt:r-12\n\n\x00")) {
		t.Error("matched a longer id")
	}
	if m := startsFrame("DISCONNECT"); !m([]byte("DISCONNECT\nreceipt:9\n\n\x00")) || m([]byte("SEND\n\nDISCONNECT\n\x00")) {
		t.Error("startsFrame must match a frame's start only")
	}
}

func TestDrainState(t *testing.T) {
	start := time.Unix(1000, 0)
	type step struct {
		at      time.Duration // after the start
		arrived int64
		settled bool
		over    bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{name: "everything arrived", steps: []step{
			{at: 0, arrived: 10, over: false},
			{at: time.Millisecond, arrived: 20, settled: true, over: true},
		}},
		{name: "nothing more arrives", steps: []step{
			{at: drainQuiet - time.Millisecond, arrived: 10, over: false},
			{at: drainQuiet, arrived: 10, over: true},
		}},
		{name: "late messages keep it going past the quiet period", steps: []step{
			{at: drainQuiet - time.Millisecond, arrived: 11, over: false},
			{at: 2*drainQuiet - 2*time.Millisecond, arrived: 11, over: false},
			{at: 2 * drainQuiet, arrived: 500, over: false},
			{at: 3*drainQuiet - time.Millisecond, arrived: 500, over: false},
			{at: 3 * drainQuiet, arrived: 500, over: true},
		}},
		{name: "a slow trickle ends at the limit", steps: func() []step {
			var steps []step
			for at, n := time.Duration(0), int64(11); at < drainLimit; at, n = at+drainQuiet/2, n+1 {
				steps = append(steps, step{at: at, arrived: n, over: false})
			}
			return append(steps, step{at: drainLimit, arrived: 1 << 20, over: true})
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDrainState(start, 10)
			for i, s := range tc.steps {
				if got := d.over(start.Add(s.at), s.arrived, s.settled); got != s.over {
					t.Fatalf("step %d (%s, %d arrived, settled %v): over %v, want %v", i, s.at, s.arrived, s.settled, got, s.over)
				}
			}
		})
	}
}

// A confirming publisher marks its SENDs persistent and asks for a receipt on every Nth one.
func TestBenchPublisherConfirm(t *testing.T) {
	c := &benchConn{stream: discardStream{}, version: frame.V12}
	p := newBenchPublisher(0, c, newFlow(defaultBenchWindow, 1), "/queue/bench.x", defaultBenchSize, 0)
	p.confirm(10, true)
	if p.destination() != "/queue/bench.x" {
		t.Fatalf("destination %q", p.destination())
	}
	batch := string(p.encode(0, 20))
	frames := strings.Split(strings.TrimSuffix(batch, "\x00"), "\x00")
	if len(frames) != 20 {
		t.Fatalf("%d frames", len(frames))
	}
	for i, f := range frames {
		if !strings.Contains(f, "\npersistent:true\n") {
			t.Errorf("frame %d without persistent:true: %.80q", i, f)
		}
		if wantReceipt := i == 9 || i == 19; strings.Contains(f, "\nreceipt:") != wantReceipt {
			t.Errorf("frame %d: receipt header %v, want %v", i, !wantReceipt, wantReceipt)
		}
		if !strings.Contains(f, "content-length:"+strconv.Itoa(defaultBenchSize)+"\n") {
			t.Errorf("frame %d: content-length not %d: %.100q", i, defaultBenchSize, f)
		}
	}
}
