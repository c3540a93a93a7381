package stompws

import (
	"fmt"
	"runtime"
	runtimemetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/transport"
)

// Memory watermarks, as fractions of Options.MaxMemory, on the live heap after a garbage collection.
// Above the high one, publishers are held back; below the low one they go on. The live heap is kept
// well under the limit because the collector needs room above it to work without thrashing, and
// because a publish briefly holds its frame twice (read buffer and message).
const (
	memoryHighWatermark = 0.6
	memoryLowWatermark  = 0.5
	// memorySampleInterval is how old a sample of the live heap may be; it changes only at each
	// collection.
	memorySampleInterval = 50 * time.Millisecond
)

// liveHeapMetric is the runtime's measure of the heap's live objects as of the last collection.
const liveHeapMetric = "/gc/heap/live:bytes"

// memoryGuard raises an alarm while the process's live heap is over the high watermark of
// Options.MaxMemory, and clears it once the heap is below the low one. Sessions hold SENDs back while
// the alarm is on (session.waitForMemory). It runs no goroutine: whoever asks, a SEND or a scrape,
// samples the heap when the last sample is older than memorySampleInterval. Safe for concurrent use.
type memoryGuard struct {
	limit, high, low uint64
	sample           func() uint64 // the live heap in bytes

	alarm    atomic.Bool
	live     atomic.Uint64 // the last sample
	next     atomic.Int64  // UnixNano at which the next sample is due
	sampling sync.Mutex    // one sampler at a time; others use the last sample
	lastGC   int64         // UnixNano of the last collection forced while alarmed; guarded by sampling
}

// memoryForcedGCInterval is how often, while the alarm is on, a collection is forced before sampling:
// the live heap is only measured by collections, and a broker that has stopped taking messages may
// allocate too little to start one, so the alarm would never see memory drain.
const memoryForcedGCInterval = time.Second

// newMemoryGuard returns a guard for limit bytes, reported through m; limit 0 returns nil, which
// never alarms. sample nil reads the runtime's live heap.
func newMemoryGuard(limit int64, sample func() uint64, m *metrics.Metrics) *memoryGuard {
	if limit <= 0 {
		m.MemoryLimitSet(0, 0)
		return nil
	}
	if sample == nil {
		sample = liveHeap
	}
	g := &memoryGuard{
		limit: uint64(limit), high: uint64(float64(limit) * memoryHighWatermark),
		low: uint64(float64(limit) * memoryLowWatermark), sample: sample,
	}
	m.MemoryLimitSet(limit, int64(g.high))
	m.ObserveMemory(func() (uint64, bool) { alarm := g.alarmed(); return g.live.Load(), alarm })
	return g
}

// alarmed reports whether publishers are to be held back, sampling the heap if the last sample is
// stale. A nil guard never alarms.
func (g *memoryGuard) alarmed() bool {
	if g == nil {
		return false
	}
	if now := time.Now().UnixNano(); now >= g.next.Load() && g.sampling.TryLock() {
		if now >= g.next.Load() {
			if g.alarm.Load() && now-g.lastGC >= int64(memoryForcedGCInterval) {
				runtime.GC()
				g.lastGC = now
			}
			g.check(g.sample())
			g.next.Store(now + int64(memorySampleInterval))
		}
		g.sampling.Unlock()
	}
	return g.alarm.Load()
}

// check moves the alarm across the watermarks for a live heap of live bytes.
func (g *memoryGuard) check(live uint64) {
	g.live.Store(live)
	switch on := g.alarm.Load(); {
	case !on && live >= g.high:
		g.alarm.Store(true)
	case on && live < g.low:
		g.alarm.Store(false)
	}
}

// errMemoryLimit refuses a SEND held back longer than Options.MemoryHoldTimeout.
func errMemoryLimit(limit uint64) *protocolError {
	return &protocolError{
		message: fmt.Sprintf("memory limit reached (max-memory %d bytes)", limit),
		detail:  "the server is holding back publishers until its memory use falls; try again later",
		code:    transport.CloseTryAgainLater, reason: metrics.ErrorMemoryLimit,
	}
}

// liveHeap reads the runtime's live heap as of the last collection.
func liveHeap() uint64 {
	s := []runtimemetrics.Sample{{Name: liveHeapMetric}}
	runtimemetrics.Read(s)
	if s[0].Value.Kind() != runtimemetrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// waitForMemory holds a SEND (or a large frame still arriving) back while the memory alarm is on: the
// session reads nothing more from its client until the alarm clears (looked at every memorySampleInterval), the session ends, or
// Options.MemoryHoldTimeout passes, which refuses the SEND. While it waits, the client's silence does not count against its heart-beats.
// Reading goroutine only.
func (s *session) waitForMemory() *protocolError {
	g := s.memory
	if !g.alarmed() {
		return nil
	}
	s.metrics.PublisherHeld(1)
	s.held.Store(true)
	defer func() {
		s.lastRead.Store(time.Now().UnixNano()) // the client was not silent: we were not reading
		s.held.Store(false)
		s.metrics.PublisherHeld(-1)
	}()
	timeout := time.NewTimer(s.opts.MemoryHoldTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(memorySampleInterval)
	defer tick.Stop()
	for g.alarmed() {
		select {
		case <-tick.C:
		case <-s.ending:
			return errShuttingDown
		case <-timeout.C:
			s.log.Info("SEND refused: memory alarm", "session", s.id, "remote", s.conn.RemoteAddr(), "held", s.opts.MemoryHoldTimeout)
			return errMemoryLimit(g.limit)
		}
	}
	return nil
}
