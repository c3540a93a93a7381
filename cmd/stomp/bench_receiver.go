package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/stompd/stompd/stompws/frame"
)

// Latency histograms record microseconds from 1 µs to 60 s with 3 significant digits.
const (
	latencyMinMicros = 1
	latencyMaxMicros = 60_000_000
	latencyDigits    = 3
)

// maxTrackedSeq bounds the sequence numbers a receiver tracks, and so the memory a broker that
// sends garbage can make it use: 2^32 messages from one publisher, over an hour at a million a
// second.
const maxTrackedSeq = 1<<32 - 1

// clockStart is the origin of the stamps' send times. time.Since reads the monotonic clock, so
// latencies are immune to wall-clock steps.
var clockStart = time.Now()

// clockNanos is the time on the tool's clock, in nanoseconds.
func clockNanos() int64 { return int64(time.Since(clockStart)) }

// receiver is a subscribed connection that checks and counts what it gets: per publisher, which
// sequence numbers arrived (lost, duplicated, out of order), the flow-control counts that let the
// publisher go on, and the latency of messages that arrive in the measured phase.
//
// Its read goroutine owns everything but delivered, which others read at any time; the rest is
// read once that goroutine has ended. The receive path allocates nothing per message, and touches
// memory other goroutines read only once per read from the connection.
type receiver struct {
	conn      *benchConn
	firstPub  int          // receives publishers firstPub … firstPub+len(trackers)-1
	trackers  []seqTracker // by publisher, from firstPub
	flows     []*flow      // by publisher, from firstPub
	slot      int          // this receiver's slot in those flows
	ack       bool         // ACK every message (client-individual, or client on STOMP 1.0)
	measuring *atomic.Bool // record latencies while set
	hist      *hdrhistogram.Histogram
	delivered atomic.Int64 // MESSAGE frames received, brought up to date after each read

	errors   int64  // messages without a valid stamp or from an unknown publisher
	firstBad string // what was wrong with the first of them

	now       int64   // clock when the bytes being parsed arrived
	unflushed int64   // messages of the current read not yet added to delivered
	credits   []int64 // by publisher, messages of the current read not yet added to its flow
	ackBuf    []byte
	emit      func(*frame.Frame) error // onFrame, bound once so that Feed allocates nothing
	onDeliver func()                   // test hook run per message; nil in real runs
}

func newReceiver(conn *benchConn, firstPub int, flows []*flow, slot int, ack bool, measuring *atomic.Bool) *receiver {
	r := &receiver{
		conn:      conn,
		firstPub:  firstPub,
		trackers:  make([]seqTracker, len(flows)),
		flows:     flows,
		credits:   make([]int64, len(flows)),
		slot:      slot,
		ack:       ack,
		measuring: measuring,
		hist:      hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencyDigits),
	}
	r.emit = r.onFrame
	return r
}

// readLoop reads and handles frames until the connection fails or is closed.
func (r *receiver) readLoop() error {
	c := r.conn
	for {
		n, err := c.stream.Read(c.buf)
		if n > 0 {
			if herr := r.handle(c.buf[:n]); herr != nil {
				return herr
			}
		}
		if err != nil {
			return err
		}
	}
}

// handle parses one read's worth of bytes, then publishes its counts and sends its ACKs in one
// write. Counting per read rather than per message spares two atomic additions per message;
// delivered is added before the flows, so that it never trails what publishers were allowed to
// send on the strength of it.
func (r *receiver) handle(b []byte) error {
	r.now = clockNanos()
	if err := r.conn.parser.Feed(b, r.emit); err != nil {
		return err
	}
	if r.unflushed > 0 {
		r.delivered.Add(r.unflushed)
		r.unflushed = 0
		for i, n := range r.credits {
			if n > 0 {
				r.flows[i].deliver(r.slot, n)
				r.credits[i] = 0
			}
		}
	}
	if len(r.ackBuf) > 0 {
		if err := r.conn.write(r.ackBuf); err != nil {
			return err
		}
		r.ackBuf = r.ackBuf[:0]
	}
	return nil
}

func (r *receiver) onFrame(f *frame.Frame) error {
	if f == nil {
		return nil
	}
	switch f.Command {
	case frame.MESSAGE:
		r.onMessage(f)
	case frame.ERROR:
		return errorFrame(f)
	}
	return nil
}

func (r *receiver) onMessage(f *frame.Frame) {
	r.unflushed++
	pub, seq, sent, ok := parseStamp(f.Body)
	i := pub - r.firstPub
	switch {
	case !ok:
		r.bad(f, "no bench stamp at the start of the body")
	case i < 0 || i >= len(r.trackers):
		r.bad(f, "from an unknown publisher")
	case seq > maxTrackedSeq:
		r.bad(f, "sequence number out of range")
	default:
		r.trackers[i].observe(seq)
		r.credits[i]++
		if r.measuring.Load() {
			micros := max((r.now-sent)/1000, 0)
			_ = r.hist.RecordValue(min(micros, latencyMaxMicros))
		}
	}
	if r.ack {
		r.appendAck(f)
	}
	if r.onDeliver != nil {
		r.onDeliver()
	}
}

// bad counts a message the run cannot account for.
func (r *receiver) bad(f *frame.Frame, why string) {
	if r.errors == 0 {
		dest, _ := f.Get("destination")
		r.firstBad = fmt.Sprintf("message on %q %s", dest, why)
	}
	r.errors++
}

// Header names as byte slices, for frame.AppendHeader with []byte values.
var (
	headerID           = []byte("id")
	headerMessageID    = []byte("message-id")
	headerSubscription = []byte("subscription")
)

// appendAck queues the ACK for f in the form the negotiated version wants: STOMP 1.2 names the
// MESSAGE's ack header, 1.1 its message-id and subscription, 1.0 its message-id.
func (r *receiver) appendAck(f *frame.Frame) {
	v := r.conn.version
	r.ackBuf = frame.AppendCommand(r.ackBuf, frame.ACK)
	if ack, ok := f.Get("ack"); ok && v == frame.V12 {
		r.ackBuf = frame.AppendHeader(r.ackBuf, v, headerID, ack)
	} else {
		id, _ := f.Get("message-id")
		r.ackBuf = frame.AppendHeader(r.ackBuf, v, headerMessageID, id)
		if sub, ok := f.Get("subscription"); ok && v != frame.V10 {
			r.ackBuf = frame.AppendHeader(r.ackBuf, v, headerSubscription, sub)
		}
	}
	r.ackBuf = frame.AppendBody(r.ackBuf, nil)
}

// errorFrame turns an ERROR frame into the error that ends the run.
func errorFrame(f *frame.Frame) error {
	msg, _ := f.Get("message")
	return newBrokerError(string(msg), f.Body)
}

// watchLoop reads a publisher's connection, which expects nothing but an ERROR, until it fails or
// is closed.
func watchLoop(c *benchConn, onReceipt func()) error {
	emit := func(f *frame.Frame) error {
		switch {
		case f == nil:
		case f.Command == frame.ERROR:
			return errorFrame(f)
		case f.Command == frame.RECEIPT && onReceipt != nil:
			onReceipt()
		}
		return nil
	}
	for {
		n, err := c.stream.Read(c.buf)
		if n > 0 {
			if ferr := c.parser.Feed(c.buf[:n], emit); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return err
		}
	}
}
