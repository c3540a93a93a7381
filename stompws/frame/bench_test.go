package frame

import (
	"bytes"
	"io"
	"strings"
	"testing"

	stompframe "github.com/go-stomp/stomp/v3/frame"
)

// sendFrame is a typical publish: destination, content-type, content-length, two custom headers
// and a 128-byte body.
var sendFrame = "SEND\ndestination:/topic/prices.eurusd\ncontent-type:application/json\ncontent-length:128\n" +
	"x-origin:feed-7\nx-seq:4711\n\n" + strings.Repeat("x", 128) + "\x00"

func BenchmarkParseSend(b *testing.B) {
	in := []byte(sendFrame)
	p := NewParser(Limits{})
	frames := 0
	emit := func(f *Frame) error { frames++; return nil }
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if err := p.Feed(in, emit); err != nil {
			b.Fatal(err)
		}
	}
	if frames == 0 {
		b.Fatal("no frame parsed")
	}
}

func BenchmarkParseSplit(b *testing.B) {
	in := []byte(sendFrame)
	chunks := [][]byte{in[:40], in[40:150], in[150:]}
	p := NewParser(Limits{})
	frames := 0
	emit := func(f *Frame) error { frames++; return nil }
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		for _, c := range chunks {
			if err := p.Feed(c, emit); err != nil {
				b.Fatal(err)
			}
		}
	}
	if frames == 0 {
		b.Fatal("no frame parsed")
	}
}

// loopReader replays one encoded frame forever, so a reader under benchmark never sees EOF.
type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// BenchmarkParseSendGoStomp parses the same frame with go-stomp's Reader, for a ratio.
func BenchmarkParseSendGoStomp(b *testing.B) {
	r := stompframe.NewReader(&loopReader{data: []byte(sendFrame)})
	b.ReportAllocs()
	b.SetBytes(int64(len(sendFrame)))
	for b.Loop() {
		f, err := r.Read()
		if err != nil || f == nil {
			b.Fatal(f, err)
		}
	}
}

var messageBody = bytes.Repeat([]byte("x"), 128)

func BenchmarkAppendMessage(b *testing.B) {
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendCommand(dst[:0], MESSAGE)
		dst = AppendHeader(dst, V12, "destination", "/topic/prices.eurusd")
		dst = AppendHeader(dst, V12, "message-id", "node1-4711")
		dst = AppendHeader(dst, V12, "subscription", "sub-0")
		dst = AppendHeader(dst, V12, "content-type", "application/json")
		dst = AppendHeader(dst, V12, "content-length", "128")
		dst = AppendBody(dst, messageBody)
	}
	b.SetBytes(int64(len(dst)))
}

func BenchmarkAppendFrame(b *testing.B) {
	headers := []Header{
		{[]byte("destination"), []byte("/topic/prices.eurusd")},
		{[]byte("message-id"), []byte("node1-4711")},
		{[]byte("subscription"), []byte("sub-0")},
		{[]byte("content-type"), []byte("application/json")},
	}
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendFrame(dst[:0], V12, MESSAGE, headers, messageBody)
	}
	b.SetBytes(int64(len(dst)))
}

// BenchmarkAppendMessageGoStomp writes the same MESSAGE with go-stomp's Writer, for a ratio.
func BenchmarkAppendMessageGoStomp(b *testing.B) {
	f := stompframe.New(stompframe.MESSAGE,
		"destination", "/topic/prices.eurusd", "message-id", "node1-4711", "subscription", "sub-0",
		"content-type", "application/json", "content-length", "128")
	f.Body = messageBody
	w := stompframe.NewWriter(io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(f); err != nil {
			b.Fatal(err)
		}
	}
}
