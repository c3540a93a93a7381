package frame

import (
	"bytes"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// hostileFeed feeds in, its first 3 bytes alone (so that later chunks take the buffered path) and
// then in chunks of size bytes, and checks after every Feed that the parser holds no more than
// maxBuffered bytes and no more than maxCapacity of buffer, and at the end that it allocated no
// more than growing such a buffer takes (which catches bytes buffered only inside the failing
// Feed). It returns the error and the range of input offsets of the chunk that failed.
func hostileFeed(t *testing.T, p *Parser, in []byte, size, maxBuffered, maxCapacity int) (err error, from, to int) {
	return hostileFeedHeaders(t, p, in, size, maxBuffered, maxCapacity, 0)
}

// hostileFeedHeaders is hostileFeed for inputs that make the parser record up to headers headers.
func hostileFeedHeaders(t *testing.T, p *Parser, in []byte, size, maxBuffered, maxCapacity, headers int) (err error, from, to int) {
	t.Helper()
	emit := func(*Frame) error { return nil }
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	defer func() {
		runtime.ReadMemStats(&after)
		budget := 2*maxCapacity + 2*headers*int(unsafe.Sizeof(headerSpan{})) + 64<<10
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > uint64(budget) {
			t.Errorf("allocated %d bytes; a buffer of at most %d bytes and %d headers need at most %d",
				allocated, maxCapacity, headers, budget)
		}
	}()
	for from = 0; from < len(in); from = to {
		to = min(from+size, len(in))
		if from == 0 {
			to = 3
		}
		err = p.Feed(in[from:to], emit)
		if p.Buffered() > maxBuffered {
			t.Fatalf("after %d bytes: Buffered() = %d, limit %d", to, p.Buffered(), maxBuffered)
		}
		if cap(p.buf) > maxCapacity {
			t.Fatalf("after %d bytes: buffer capacity %d, limit %d", to, cap(p.buf), maxCapacity)
		}
		if err != nil {
			return err, from, to
		}
	}
	return nil, len(in), len(in)
}

// failsWithin checks that the chunk that failed, in[from:to], held byte offset at.
func failsWithin(t *testing.T, from, to, at int) {
	t.Helper()
	if at < from || at >= to {
		t.Errorf("failed on bytes [%d, %d); want the chunk holding byte %d", from, to, at)
	}
}

var chunkSizes = []int{1, 7, 100, 4096, 65536, 1 << 30}

func TestLongHeaderLine(t *testing.T) {
	l := Limits{}.WithDefaults()
	in := []byte("SEND\nh:" + strings.Repeat("x", 1_000_000-2) + "\n\n\x00")
	const command = len("SEND\n")
	for _, size := range chunkSizes {
		t.Run("chunk "+strconv.Itoa(size), func(t *testing.T) {
			p := NewParser(Limits{})
			err, from, to := hostileFeed(t, p, in, size, command+l.MaxHeaderBytes+1, 2*(command+l.MaxHeaderBytes+2))
			if !errors.Is(err, ErrHeaderTooLong) {
				t.Fatalf("error %v, want %v", err, ErrHeaderTooLong)
			}
			failsWithin(t, from, to, command+l.MaxHeaderBytes) // the line's byte MaxHeaderBytes+1
		})
	}
}

func TestManyHeaders(t *testing.T) {
	l := Limits{}.WithDefaults()
	in := []byte("SEND\n" + strings.Repeat("h:v\n", 10_000) + "\n\x00")
	const command, line = len("SEND\n"), len("h:v\n")
	for _, size := range append(chunkSizes, line) {
		t.Run("chunk "+strconv.Itoa(size), func(t *testing.T) {
			p := NewParser(Limits{})
			maxFrame := command + line*l.MaxHeaders + line
			err, from, to := hostileFeedHeaders(t, p, in, size, maxFrame, 2*maxFrame, l.MaxHeaders)
			if !errors.Is(err, ErrTooManyHeaders) {
				t.Fatalf("error %v, want %v", err, ErrTooManyHeaders)
			}
			failsWithin(t, from, to, command+line*(l.MaxHeaders+1)-1) // EOL of header MaxHeaders+1
		})
	}
}

func TestHugeContentLength(t *testing.T) {
	in := []byte("SEND\ncontent-length:4294967296\n\n" + strings.Repeat("x", 1000))
	const headerEOL = len("SEND\ncontent-length:4294967296\n") - 1
	for _, size := range chunkSizes {
		t.Run("chunk "+strconv.Itoa(size), func(t *testing.T) {
			p := NewParser(Limits{})
			err, from, to := hostileFeed(t, p, in, size, headerEOL, minBufferBytes)
			if !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("error %v, want %v", err, ErrFrameTooLarge)
			}
			failsWithin(t, from, to, headerEOL)
		})
	}
}

func TestEndlessBody(t *testing.T) {
	l := Limits{MaxFrameBytes: 1 << 20}
	in := append([]byte("SEND\n\n"), bytes.Repeat([]byte("x"), 2<<20)...)
	for _, size := range []int{1000, 4096, 65536, 1 << 30} {
		t.Run("chunk "+strconv.Itoa(size), func(t *testing.T) {
			p := NewParser(l)
			err, from, to := hostileFeed(t, p, in, size, l.MaxFrameBytes+1, l.MaxFrameBytes+1)
			if !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("error %v, want %v", err, ErrFrameTooLarge)
			}
			failsWithin(t, from, to, l.MaxFrameBytes) // the frame's byte MaxFrameBytes+1
		})
	}
}

// A peer that announces a large body and then sends little must not make the parser allocate
// the announced size up front.
func TestAnnouncedBodyGrowsWithData(t *testing.T) {
	p := NewParser(Limits{})
	if _, err := feedChunks(p, []byte("SEND\ncontent-length:4000000\n\nabc")); err != nil {
		t.Fatal(err)
	}
	if cap(p.buf) > minBufferBytes {
		t.Errorf("buffer capacity %d for %d buffered bytes", cap(p.buf), p.Buffered())
	}
	got, err := feedChunks(p, bytes.Repeat([]byte("y"), 4000000-3), []byte{0})
	if err != nil || len(got) != 1 || len(got[0].Body) != 4000000 {
		t.Fatalf("got %d frames, error %v", len(got), err)
	}
	if cap(p.buf) > maxRetainedBufferBytes {
		t.Errorf("buffer of %d bytes kept after the frame", cap(p.buf))
	}
}
