package main

import (
	"context"
	"strconv"
	"strings"
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

	// With receipts (confirm): every receiptEvery-th message is receiptTemplate, and the publisher
	// waits for its RECEIPT before sending more.
	receiptEvery    int64
	receiptTemplate []byte
	receiptStampAt  int
	receipts        chan struct{} // capacity 1; the watch loop of the connection signals each RECEIPT
}

// newBenchPublisher prepares publisher id's SEND frame: destination, content-length and a body of
// size bytes, padded after the stamp.
func newBenchPublisher(id int, conn *benchConn, f *flow, dest string, size int, rate float64) *benchPublisher {
	t, stampAt := sendTemplate(conn.version, dest, size)
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

// sendTemplate builds a SEND frame to dest with a body of size padding bytes, headers as name, value
// pairs, and returns it with the offset of the body.
func sendTemplate(version frame.Version, dest string, size int, headers ...string) ([]byte, int) {
	t := frame.AppendCommand(nil, frame.SEND)
	t = frame.AppendHeader(t, version, "destination", dest)
	for i := 0; i+1 < len(headers); i += 2 {
		t = frame.AppendHeader(t, version, headers[i], headers[i+1])
	}
	t = frame.AppendHeader(t, version, "content-length", strconv.Itoa(size))
	t = append(t, '\n')
	stampAt := len(t)
	for range size {
		t = append(t, stampPadding)
	}
	return append(t, 0), stampAt
}

// confirm makes the publisher ask for a RECEIPT every receiptEvery messages (0: never) and wait for
// it, and mark its messages persistent:true.
func (p *benchPublisher) confirm(receiptEvery int, persistent bool) {
	if receiptEvery <= 0 && !persistent {
		return
	}
	dest := p.destination()
	size := len(p.template) - p.stampAt - 1
	var extra []string
	if persistent {
		extra = []string{"persistent", "true"}
		p.template, p.stampAt = sendTemplate(p.conn.version, dest, size, extra...)
	}
	if receiptEvery > 0 {
		p.receiptEvery = int64(receiptEvery)
		p.receipts = make(chan struct{}, 1)
		p.receiptTemplate, p.receiptStampAt = sendTemplate(p.conn.version, dest, size, append(extra, "receipt", "confirm")...)
		p.maxBatch = min(p.maxBatch, p.receiptEvery)
	}
}

// destination reads the destination back from the template.
func (p *benchPublisher) destination() string {
	const key = "\ndestination:"
	t := string(p.template[:p.stampAt])
	i := strings.Index(t, key) + len(key)
	return t[i : i+strings.IndexByte(t[i:], '\n')]
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
		confirm := false
		if p.receiptEvery > 0 {
			// End the batch at the next message that asks for a receipt.
			toReceipt := p.receiptEvery - seq%p.receiptEvery
			n = min(n, toReceipt)
			confirm = n == toReceipt
		}
		if err := p.conn.write(p.encode(seq, n)); err != nil {
			return err
		}
		seq += n
		p.sent.Store(seq)
		if confirm {
			select {
			case <-p.receipts:
			case <-stop:
				return nil
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// receipted is called by the connection's watch loop for each RECEIPT.
func (p *benchPublisher) receipted() {
	if p.receipts == nil {
		return
	}
	select {
	case p.receipts <- struct{}{}:
	default:
	}
}

// encode returns n messages from sequence number seq on, stamped with the current time.
func (p *benchPublisher) encode(seq, n int64) []byte {
	b := p.batch[:0]
	now := clockNanos()
	for i := range n {
		start := len(b)
		if p.receiptEvery > 0 && (seq+i+1)%p.receiptEvery == 0 {
			b = append(b, p.receiptTemplate...)
			putStamp(b[start+p.receiptStampAt:], p.id, uint64(seq+i), now)
			continue
		}
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
