package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// benchReport is what a run found. Its JSON form is the -json output; fields that need -pid, or
// deliveries, are null without them.
//
// published and delivered count the measured phase; lost, duplicated and out_of_order count every
// message of the run, warm-up and drain included.
type benchReport struct {
	Scenario                    string          `json:"scenario"`
	URL                         string          `json:"url"`
	Transport                   string          `json:"transport"`
	Size                        int             `json:"size"`
	DurationS                   float64         `json:"duration_s"`
	Connections                 int             `json:"connections"`
	Published                   int64           `json:"published"`
	Delivered                   int64           `json:"delivered"`
	PublishedPerS               float64         `json:"published_per_s"`
	DeliveredPerS               float64         `json:"delivered_per_s"`
	Lost                        int64           `json:"lost"`
	Duplicated                  int64           `json:"duplicated"`
	OutOfOrder                  int64           `json:"out_of_order"`
	Errors                      int64           `json:"errors"`
	LatencyMicros               *latencySummary `json:"latency_us"`
	BrokerCPUS                  *float64        `json:"broker_cpu_s"`
	BrokerCPUSPerMillion        *float64        `json:"broker_cpu_s_per_million_deliveries"`
	BrokerRSSBytes              *int64          `json:"broker_rss_bytes"`
	BrokerRSSBeforeBytes        *int64          `json:"broker_rss_before_bytes,omitempty"` // idle only
	BrokerRSSPerConnectionBytes *int64          `json:"broker_rss_per_connection_bytes"`
	// ConnectsPerS is the rate at which the idle scenario set its connections up (handshake, CONNECT,
	// SUBSCRIBE with its receipt), dialParallelism at a time: how fast a broker takes a reconnect storm.
	ConnectsPerS *float64 `json:"connects_per_s,omitempty"` // idle only

	firstError string   // what the first of Errors was
	notes      []string // how the run differed from what was asked, one line each, for stderr
}

// latencySummary is end-to-end latency in microseconds, from the publisher's write to the
// receiver's read, over messages received in the measured phase.
type latencySummary struct {
	P50  int64 `json:"p50"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p999"`
	Max  int64 `json:"max"`
}

// newReport fills in what the samples at the start and end of the measured phase give.
func (r *benchRun) newReport(connections int, start, end sample) *benchReport {
	cfg := r.cfg
	secs := end.at.Sub(start.at).Seconds()
	rep := &benchReport{
		Scenario:    cfg.scenario.name,
		URL:         cfg.conn.url,
		Transport:   r.dialer.transport(),
		Size:        cfg.size,
		DurationS:   secs,
		Connections: connections,
		Published:   end.published - start.published,
		Delivered:   end.delivered - start.delivered,
	}
	if secs > 0 {
		rep.PublishedPerS = float64(rep.Published) / secs
		rep.DeliveredPerS = float64(rep.Delivered) / secs
	}
	if cfg.pid != 0 {
		cpu := end.cpu - start.cpu
		rep.BrokerCPUS = &cpu
		if rep.Delivered > 0 {
			perMillion := cpu / float64(rep.Delivered) * 1e6
			rep.BrokerCPUSPerMillion = &perMillion
		}
	}
	return rep
}

// verdict is the run's outcome as the exit status sees it: nil when every message arrived exactly
// once (and, on a topic, in order), else an error naming what went wrong.
func (rep *benchReport) verdict(queue bool) error {
	var problems []string
	if rep.Lost > 0 {
		problems = append(problems, fmt.Sprintf("%d lost", rep.Lost))
	}
	if rep.Duplicated > 0 {
		problems = append(problems, fmt.Sprintf("%d duplicated", rep.Duplicated))
	}
	if rep.OutOfOrder > 0 && !queue {
		problems = append(problems, fmt.Sprintf("%d out of order on a topic", rep.OutOfOrder))
	}
	if rep.Errors > 0 {
		problems = append(problems, fmt.Sprintf("%d errors (first: %s)", rep.Errors, rep.firstError))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", errBenchFailed, strings.Join(problems, ", "))
}

func (rep *benchReport) writeJSON(w io.Writer) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeSummary prints the report for people.
func (rep *benchReport) writeSummary(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s over %s (%s): %d connections, %d-byte bodies, %.1f s measured\n",
		rep.Scenario, rep.Transport, rep.URL, rep.Connections, rep.Size, rep.DurationS)
	if rep.Scenario != "idle" {
		fmt.Fprintf(&b, "  published   %13s msg  %13s msg/s\n", grouped(rep.Published), grouped(int64(rep.PublishedPerS)))
		fmt.Fprintf(&b, "  delivered   %13s msg  %13s msg/s\n", grouped(rep.Delivered), grouped(int64(rep.DeliveredPerS)))
	}
	fmt.Fprintf(&b, "  lost %s, duplicated %s, out of order %s, errors %s\n",
		grouped(rep.Lost), grouped(rep.Duplicated), grouped(rep.OutOfOrder), grouped(rep.Errors))
	if l := rep.LatencyMicros; l != nil {
		fmt.Fprintf(&b, "  latency     p50 %s  p99 %s  p99.9 %s  max %s\n",
			micros(l.P50), micros(l.P99), micros(l.P999), micros(l.Max))
	}
	if rep.BrokerCPUS != nil {
		fmt.Fprintf(&b, "  broker CPU  %.2f s", *rep.BrokerCPUS)
		if rep.BrokerCPUSPerMillion != nil {
			fmt.Fprintf(&b, ", %.2f s per million deliveries", *rep.BrokerCPUSPerMillion)
		}
		b.WriteString("\n")
	}
	if rep.ConnectsPerS != nil {
		fmt.Fprintf(&b, "  connected   %13s conn/s (handshake, CONNECT, SUBSCRIBE; %d at a time)\n",
			grouped(int64(*rep.ConnectsPerS)), dialParallelism)
	}
	if rep.BrokerRSSBytes != nil {
		fmt.Fprintf(&b, "  broker RSS  %s", mebibytes(*rep.BrokerRSSBytes))
		if rep.BrokerRSSBeforeBytes != nil {
			fmt.Fprintf(&b, " (%s before connecting)", mebibytes(*rep.BrokerRSSBeforeBytes))
		}
		if rep.BrokerRSSPerConnectionBytes != nil {
			fmt.Fprintf(&b, ", %.1f KiB per connection", float64(*rep.BrokerRSSPerConnectionBytes)/1024)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// grouped writes n with thousands separators.
func grouped(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// micros writes a latency in the unit that suits it.
func micros(us int64) string {
	if us < 1000 {
		return fmt.Sprintf("%d µs", us)
	}
	return fmt.Sprintf("%.2f ms", float64(us)/1000)
}

func mebibytes(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// progressInterval is how often the live progress line is redrawn.
const progressInterval = time.Second

// startProgress redraws a one-line progress report on w every interval while the run goes on. The
// returned function stops it and clears the line.
func startProgress(w io.Writer, r *benchRun, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		last, _ := r.counts()
		lastAt := time.Now()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\x1b[K")
				return
			case now := <-tick.C:
				cur, conns := r.counts()
				secs := now.Sub(lastAt).Seconds()
				phase := r.phase.Load()
				line := fmt.Sprintf("%s %s %.0fs", r.cfg.scenario.name, phaseNames[phase], time.Duration(clockNanos()-r.phaseStart.Load()).Seconds())
				switch {
				case phase == phaseConnecting || phase == phaseHolding:
					line += fmt.Sprintf("  %s connections", grouped(conns))
				case secs > 0:
					line += fmt.Sprintf("  published %s/s  delivered %s/s",
						grouped(int64(float64(cur.published-last.published)/secs)), grouped(int64(float64(cur.delivered-last.delivered)/secs)))
				}
				fmt.Fprintf(w, "\r%s\x1b[K", line)
				last, lastAt = cur, now
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// counts reads the run's counters for the progress line.
func (r *benchRun) counts() (sample, int64) {
	var s sample
	r.mu.Lock()
	pubs, recvs := r.pubs, r.recvs
	r.mu.Unlock()
	for _, p := range pubs {
		s.published += p.sent.Load()
	}
	for _, rc := range recvs {
		s.delivered += rc.delivered.Load()
	}
	return s, r.connected.Load()
}
