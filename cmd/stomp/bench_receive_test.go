package main

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stompd/stompd/stompws/frame"
)

// discardStream stands in for a connection whose writes go nowhere.
type discardStream struct{}

func (discardStream) Read([]byte) (int, error)    { return 0, nil }
func (discardStream) Write(p []byte) (int, error) { return len(p), nil }
func (discardStream) Close() error                { return nil }

// brokerMessages encodes n MESSAGE frames from publisher 0, sequence numbers 0 … n-1, as a broker
// sends them to subscription 0; with ack, each carries an ack header as for a client-ack
// subscription.
func brokerMessages(n int, ack bool) []byte {
	body := make([]byte, defaultBenchSize)
	for i := range body {
		body[i] = stampPadding
	}
	var b []byte
	for i := range n {
		putStamp(body, 0, uint64(i), clockNanos())
		b = frame.AppendCommand(b, frame.MESSAGE)
		b = frame.AppendHeader(b, frame.V12, "subscription", "0")
		b = frame.AppendHeader(b, frame.V12, "destination", "/topic/bench.0123abcd")
		b = frame.AppendHeader(b, frame.V12, "message-id", "9f3c2a1b-"+strconv.Itoa(i))
		if ack {
			b = frame.AppendHeader(b, frame.V12, "ack", "0-"+strconv.Itoa(i))
		}
		b = frame.AppendHeader(b, frame.V12, "content-length", strconv.Itoa(len(body)))
		b = frame.AppendBody(b, body)
	}
	return b
}

// BenchmarkBenchReceive measures a receiver's cost per message: parsing, stamp, sequence tracking,
// flow control and latency, from reads of benchReadBuffer bytes that split frames as a socket does.
func BenchmarkBenchReceive(b *testing.B) {
	const messages = 1 << 16
	for _, ack := range []bool{false, true} {
		name := "auto"
		if ack {
			name = "client-individual"
		}
		b.Run(name, func(b *testing.B) {
			stream := brokerMessages(messages, ack)
			var measuring atomic.Bool
			measuring.Store(true)
			newRecv := func() *receiver {
				c := &benchConn{stream: discardStream{}, version: frame.V12, parser: frame.NewParser(frame.Limits{}), buf: make([]byte, benchReadBuffer)}
				return newReceiver(c, 0, []*flow{newFlow(messages, 1)}, 0, ack, &measuring)
			}
			r := newRecv()
			b.ReportAllocs()
			b.SetBytes(int64(len(stream) / messages))
			b.ResetTimer()
			off := 0
			for done := 0; done < b.N; {
				if off == len(stream) {
					// Every sequence number has been seen: start over with a fresh receiver, as a
					// new run would.
					b.StopTimer()
					off, r = 0, newRecv()
					b.StartTimer()
				}
				n := copy(r.conn.buf, stream[off:])
				off += n
				before := r.delivered.Load()
				if err := r.handle(r.conn.buf[:n]); err != nil {
					b.Fatal(err)
				}
				done += int(r.delivered.Load() - before)
			}
			if r.errors != 0 {
				b.Fatalf("%d errors: %s", r.errors, r.firstBad)
			}
		})
	}
}

// BenchmarkBenchPublish measures a publisher's cost per message to encode its batches.
func BenchmarkBenchPublish(b *testing.B) {
	c := &benchConn{stream: discardStream{}, version: frame.V12}
	p := newBenchPublisher(0, c, newFlow(defaultBenchWindow, 1), "/topic/bench.0123abcd", defaultBenchSize, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(p.template)))
	b.ResetTimer()
	for seq := int64(0); seq < int64(b.N); seq += p.maxBatch {
		if err := c.write(p.encode(seq, min(p.maxBatch, int64(b.N)-seq))); err != nil {
			b.Fatal(err)
		}
	}
}
