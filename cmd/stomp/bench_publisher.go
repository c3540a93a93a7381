package main

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/stompd/stompd/stompws/frame"
)

// maxBatchBytes bounds one write of a publisher: enough frames to make a write worth its system
// call, few enough that a broker's WebSocket message limit is no concern.
const maxBatchBytes = 32 << 10

// benchPublisher sends stamped messages to one destination as fast as its flow-control window and
// its rate allow, several frames per write. run is its one goroutine; sent may be read at any time.
type benchPublisher struct {
	id       int
	conn     *benchConn
	flow     *flow
	template []byte // one SEND frame; each message is a copy with its own stamp
	stampAt  int    // offset of the body in template
	maxBatch int64  // messages per write
	want     int64  // room to wait for once the window is full
	rate     float64
	batch    []byte
	sent     atomic.Int64 // messages written; the next sequence number
}

// newBenchPublisher prepares publisher id's SEND frame: destination, content-length and a body of
// size bytes, padded after the stamp.
func newBenchPublisher(id int, conn *benchConn, f *flow, dest string, size int, rate float64) *benchPublisher {
	t := frame.AppendCommand(nil, frame.SEND)
	t = frame.AppendHeader(t, conn.version, "destination", dest)
	t = frame.AppendHeader(t, conn.version, "content-length", strconv.Itoa(size))
	t = append(t, '\n')
	stampAt := len(t)
	for range size {
		t = append(t, stampPadding)
	}
	t = append(t, 0)
	p := &benchPublisher{
		id:       id,
		conn:     conn,
		flow:     f,
		template: t,
		stampAt:  stampAt,
		maxBatch: min(max(1, int64(maxBatchBytes/len(t))), f.window),
		rate:     rate,
	}
	p.want = max(1, min(f.window/2, p.maxBatch))
	if rate > 0 {
		// A paced publisher sends each message when it is due, so any room will do.
		p.want = 1
	}
	p.batch = make([]byte, 0, int(p.maxBatch)*len(t))
	return p
}

// run publishes until stop is closed or ctx ends (nil), or a write fails.
func (p *benchPublisher) run(ctx context.Context, stop <-chan struct{}) error {
	pace := newBenchPacer(p.rate, clockNanos())
	var seq int64
	for {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return nil
		default:
		}
		n := p.maxBatch
		if pace != nil {
			due := pace.due(clockNanos(), seq)
			if due == 0 {
				if !pace.sleepUntilDue(ctx, stop, seq) {
					return nil
				}
				continue
			}
			n = min(n, due)
		}
		room := p.flow.room(seq)
		if room <= 0 {
			if room = p.flow.wait(ctx, stop, seq, p.want); room == 0 {
				return nil
			}
		}
		n = min(n, room)
		if err := p.conn.write(p.encode(seq, n)); err != nil {
			return err
		}
		seq += n
		p.sent.Store(seq)
	}
}

// encode returns n messages from sequence number seq on, stamped with the current time.
func (p *benchPublisher) encode(seq, n int64) []byte {
	b := p.batch[:0]
	now := clockNanos()
	for i := range n {
		start := len(b)
		b = append(b, p.template...)
		putStamp(b[start+p.stampAt:], p.id, uint64(seq+i), now)
	}
	p.batch = b
	return b
}

// benchPacer spaces a publisher's messages evenly at its rate. After a stall it sends at most a
// burst (a hundredth of a second's worth) at once rather than everything it missed.
type benchPacer struct {
	start    int64   // clock of message 0
	interval float64 // nanoseconds per message
	burst    int64
	timer    *time.Timer
}

// newBenchPacer returns a pacer for rate messages per second starting at now, or nil, which
// never waits, when rate is not positive.
func newBenchPacer(rate float64, now int64) *benchPacer {
	if rate <= 0 {
		return nil
	}
	return &benchPacer{start: now, interval: float64(time.Second) / rate, burst: max(1, int64(rate/100))}
}

// due is how many messages may go now, when sent have gone.
func (p *benchPacer) due(now, sent int64) int64 {
	n := int64(float64(now-p.start)/p.interval) + 1 - sent
	if n > p.burst {
		p.start = now - int64(float64(sent+p.burst-1)*p.interval)
		n = p.burst
	}
	return max(n, 0)
}

// sleepUntilDue waits for message sent's time; false when stop is closed or ctx ends first.
func (p *benchPacer) sleepUntilDue(ctx context.Context, stop <-chan struct{}, sent int64) bool {
	d := time.Duration(p.start + int64(float64(sent)*p.interval) - clockNanos())
	if d <= 0 {
		return true
	}
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	select {
	case <-p.timer.C:
		return true
	case <-stop:
	case <-ctx.Done():
	}
	p.timer.Stop()
	return false
}
