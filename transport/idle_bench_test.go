package transport_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stompd/stompd/stompws"
	"github.com/stompd/stompd/stompws/stompwstest"
	"github.com/stompd/stompd/transport"
)

var (
	idleConns   = flag.Int("idle.conns", 2000, "connections held by BenchmarkIdleConnMemory")
	idleProfile = flag.String("idle.profile", "", "write heap and goroutine profiles of the held connections to `prefix`.<transport>.{heap,goroutine}.pprof")
)

// BenchmarkIdleConnMemory measures what one idle, subscribed STOMP connection costs the server: a
// child process opens -idle.conns connections (CONNECT with heart-beat 0,0, one SUBSCRIBE, then
// silence) to a complete in-process server, and the server's memory is compared before and after,
// each time after a full garbage collection with freed memory returned to the operating system.
// Reported per connection: resident set size (rss-B/conn, from /proc/self/status), Go heap in use
// (heap-B/conn), goroutine stacks in use (stack-B/conn), and goroutines. Kernel socket buffers are
// not part of any of them.
//
// It is a measurement, not a loop. Memory freed by one measurement (goroutine descriptors, heap spans)
// is reused by the next in the same process and hides part of the cost, so the figures are those of
// the process's first round: for cold figures run it once, one transport per process, for example
//
//	go test ./transport -run '^$' -bench 'IdleConnMemory/transport=ws' -benchtime 1x -idle.conns 10000
//
// Add -idle.profile=PREFIX -memprofilerate=1 for a heap profile, exact, of the held connections (the
// profiling itself then adds to the RSS), and a goroutine profile showing where their goroutines wait.
// Each process needs an open file per connection: past the hard RLIMIT_NOFILE, raising it takes
// CAP_SYS_RESOURCE.
func BenchmarkIdleConnMemory(b *testing.B) {
	if err := transport.RaiseOpenFileLimit(uint64(*idleConns) + 512); err != nil {
		b.Fatalf("raise the open file limit: %v", err)
	}
	for _, kind := range []string{"ws", "tcp"} {
		b.Run("transport="+kind, func(b *testing.B) { benchmarkIdleConnMemory(b, kind, *idleConns) })
	}
}

func benchmarkIdleConnMemory(b *testing.B, kind string, n int) {
	srv := stompwstest.Start(b, stompwstest.Config{Options: stompws.Options{MaxConnections: -1}})
	addr := srv.TCPAddr
	if kind == "ws" {
		addr = strings.TrimPrefix(srv.HTTPURL, "http://")
	}
	// Later rounds reuse memory the earlier ones freed: the first round's figures are the ones reported.
	var first struct{ before, after serverMemory }
	var setup time.Duration
	for i := range b.N {
		before := readServerMemory()
		start := time.Now()
		clients := transport.StartIdleClients(b, kind, addr, n)
		if got := srv.Broker.Stats().Subscriptions; got != n {
			clients.Close()
			b.Fatalf("%d subscriptions after %d clients subscribed", got, n)
		}
		if i == 0 {
			setup = time.Since(start)
			first.before, first.after = before, readServerMemory()
			if *idleProfile != "" {
				writeProfiles(b, *idleProfile+"."+kind)
			}
		}
		clients.Close()
		waitSessionsEnded(b, srv.STOMP)
	}
	before, after := first.before, first.after
	per := func(after, before uint64) float64 { return (float64(after) - float64(before)) / float64(n) }
	b.ReportMetric(per(after.rss, before.rss), "rss-B/conn")
	b.ReportMetric(per(after.heapInuse, before.heapInuse), "heap-B/conn")
	b.ReportMetric(per(after.stackInuse, before.stackInuse), "stack-B/conn")
	b.ReportMetric(per(after.goroutines, before.goroutines), "goroutines/conn")
	b.ReportMetric(float64(after.rss)/(1<<20), "rss-MiB")
	b.ReportMetric(setup.Seconds(), "setup-s")
}

// waitSessionsEnded waits until the server has no sessions left, so that the next run starts from an
// empty server.
func waitSessionsEnded(b *testing.B, srv *stompws.Server) {
	deadline := time.Now().Add(2 * time.Minute)
	for srv.SessionCount() > 0 {
		if time.Now().After(deadline) {
			b.Fatalf("%d sessions still open after the clients left", srv.SessionCount())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type serverMemory struct {
	rss, heapInuse, stackInuse, goroutines uint64
}

// readServerMemory collects garbage, returns freed memory to the operating system, and reads this
// process's memory figures.
func readServerMemory() serverMemory {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return serverMemory{
		rss:        residentSetSize(),
		heapInuse:  ms.HeapInuse,
		stackInuse: ms.StackInuse,
		goroutines: uint64(runtime.NumGoroutine()),
	}
}

// residentSetSize reads VmRSS from /proc/self/status, in bytes; 0 where there is no such file.
func residentSetSize() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func writeProfiles(b *testing.B, prefix string) {
	for _, name := range []string{"heap", "goroutine"} {
		f, err := os.Create(fmt.Sprintf("%s.%s.pprof", prefix, name))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
