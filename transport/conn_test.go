package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEnqueueOrder(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			p := tr.open(t, Options{MaxBatchBytes: 700})
			frames, total := makeFrames(300, 7)
			var want bytes.Buffer
			for _, f := range frames {
				if err := p.server.Enqueue([]byte(f.head), []byte(f.tail), f.binary); err != nil {
					t.Fatal(err)
				}
				want.WriteString(f.head + f.tail)
			}
			if got := p.readBytes(t, total); !bytes.Equal(got, want.Bytes()) {
				t.Errorf("received %q\nwant %q", got, want.Bytes())
			}
		})
	}
}

// TestEnqueueCopiesHead checks that the caller may reuse its head buffer as soon as Enqueue returns.
func TestEnqueueCopiesHead(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			p := tr.open(t, Options{})
			head := []byte("AAAA")
			var want bytes.Buffer
			for _, c := range []byte("ABCDEFGH") {
				for i := range head {
					head[i] = c
				}
				if err := p.server.Enqueue(head, nil, false); err != nil {
					t.Fatal(err)
				}
				want.Write(head)
			}
			if got := p.readBytes(t, want.Len()); !bytes.Equal(got, want.Bytes()) {
				t.Errorf("received %q, want %q", got, want.Bytes())
			}
		})
	}
}

func TestSlowConsumer(t *testing.T) {
	const limit = 256 << 10
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			p := tr.open(t, Options{MaxQueuedBytes: limit})
			fillUntilSlow(t, p.server, limit) // the peer never reads
			if err := p.server.Enqueue(make([]byte, limit), nil, false); !errors.Is(err, ErrSlowConsumer) {
				t.Errorf("Enqueue of a limit-sized frame into a non-empty queue = %v, want ErrSlowConsumer", err)
			}
			if q := p.server.Queued(); q > limit || q == 0 {
				t.Errorf("Queued() = %d, want 1..%d", q, limit)
			}
		})
	}
}

// TestFirstFrameAboveLimit: one frame bigger than the whole limit is accepted into an empty queue, and
// nothing more is accepted while it is still queued.
func TestFirstFrameAboveLimit(t *testing.T) {
	peer, server := pipePair(t, Options{MaxQueuedBytes: 100})
	big := bytes.Repeat([]byte("b"), 1000)
	if err := server.Enqueue(big[:10], big[10:], false); err != nil {
		t.Fatalf("first frame into an empty queue: %v", err)
	}
	if err := server.Enqueue([]byte("small"), nil, false); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("Enqueue behind the big frame = %v, want ErrSlowConsumer", err)
	}
	if got := server.Queued(); got != len(big) {
		t.Errorf("Queued() = %d, want %d", got, len(big))
	}
	if got := streamPeer(peer, server).readBytes(t, len(big)); !bytes.Equal(got, big) {
		t.Fatal("big frame corrupted")
	}
	waitFor(t, "queue to empty", func() bool { return server.Queued() == 0 })
	if err := server.Enqueue([]byte("small"), nil, false); err != nil {
		t.Errorf("Enqueue into the emptied queue: %v", err)
	}
}

// TestCloseFlushes: everything queued before Close reaches the peer, then the close.
func TestCloseFlushes(t *testing.T) {
	for _, tr := range transports {
		for _, concurrentRead := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/read_in_progress=%v", tr.name, concurrentRead), func(t *testing.T) {
				p := tr.open(t, Options{MaxBatchBytes: 4096})
				var readErr <-chan error
				if concurrentRead {
					readErr = readAsync(p.server)
				}
				frames, _ := makeFrames(500, 0)
				var want bytes.Buffer
				for _, f := range frames {
					if err := p.server.Enqueue([]byte(f.head), []byte(f.tail), f.binary); err != nil {
						t.Fatal(err)
					}
					want.WriteString(f.head + f.tail)
				}
				closed := make(chan error, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
					defer cancel()
					closed <- p.server.Close(ctx, ClosePolicyViolation, "bye")
				}()
				got, err := p.readToEnd()
				if !bytes.Equal(got, want.Bytes()) {
					t.Errorf("peer received %d bytes, want %d (the queued frames, in order); end: %v", len(got), want.Len(), err)
				}
				if err := recvTimeout(t, closed, "Close"); err != nil {
					t.Errorf("Close: %v", err)
				}
				if concurrentRead {
					if err := recvTimeout(t, readErr, "Read to end"); !errors.Is(err, ErrClosed) {
						t.Errorf("concurrent Read = %v, want ErrClosed", err)
					}
				}
				if err := p.server.Enqueue([]byte("late"), nil, false); !errors.Is(err, ErrClosed) {
					t.Errorf("Enqueue after Close = %v, want ErrClosed", err)
				}
			})
		}
	}
}

// TestCloseStuckPeer: a peer that never reads cannot hold Close past ctx.
func TestCloseStuckPeer(t *testing.T) {
	const limit = 256 << 10
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			p := tr.open(t, Options{MaxQueuedBytes: limit})
			fillUntilSlow(t, p.server, limit)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- p.server.Close(ctx, CloseNormal, "") }()
			if err := recvTimeout(t, done, "Close with an expired context"); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Close = %v, want context.DeadlineExceeded", err)
			}
			if q := p.server.Queued(); q != 0 {
				t.Errorf("Queued() after Close = %d, want 0", q)
			}
			if _, err := p.server.Read(make([]byte, 8)); !errors.Is(err, ErrClosed) {
				t.Errorf("Read after Close = %v, want ErrClosed", err)
			}
		})
	}
}

func TestAbort(t *testing.T) {
	const limit = 256 << 10
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			p := tr.open(t, Options{MaxQueuedBytes: limit})
			readErr := readAsync(p.server)
			fillUntilSlow(t, p.server, limit)

			done := make(chan struct{})
			go func() {
				defer close(done)
				p.server.Abort()
			}()
			recvTimeout(t, done, "Abort")
			if err := recvTimeout(t, readErr, "Read to end"); !errors.Is(err, ErrClosed) {
				t.Errorf("Read in progress = %v, want ErrClosed", err)
			}
			if err := p.server.Enqueue([]byte("x"), nil, false); !errors.Is(err, ErrClosed) {
				t.Errorf("Enqueue after Abort = %v, want ErrClosed", err)
			}
			if err := p.server.Close(context.Background(), CloseNormal, ""); !errors.Is(err, ErrClosed) {
				t.Errorf("Close after Abort = %v, want ErrClosed", err)
			}
			if q := p.server.Queued(); q != 0 {
				t.Errorf("Queued() after Abort = %d, want 0", q)
			}
			// Abort returns once the writer has signed off; the goroutine itself unwinds a moment later.
			waitFor(t, "writer goroutine to exit", func() bool { return writerGoroutines() == 0 })
		})
	}
}

// TestCloseConcurrent: many Close and Abort calls at once all return, the later ones with the first's
// result or ErrClosed.
func TestCloseConcurrent(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			p := tr.open(t, Options{})
			go p.readToEnd()
			frames, _ := makeFrames(50, 0)
			for _, f := range frames {
				if err := p.server.Enqueue([]byte(f.head), []byte(f.tail), false); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 4 {
				wg.Go(func() { errs <- p.server.Close(context.Background(), CloseGoingAway, "shutdown") })
			}
			wg.Go(p.server.Abort)
			waited := make(chan struct{})
			go func() {
				wg.Wait()
				close(waited)
			}()
			recvTimeout(t, waited, "Close and Abort calls")
			close(errs)
			var first error
			for i := 0; ; i++ {
				err, ok := <-errs
				if !ok {
					break
				}
				if i == 0 {
					first = err
				} else if err != first {
					t.Errorf("Close results differ: %v and %v", first, err)
				}
				if err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("Close = %v, want nil or ErrClosed", err)
				}
			}
		})
	}
}

func TestOnDrainAndLastWrite(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			drained := make(chan int, 16)
			p := tr.open(t, Options{})
			p.server.SetOnDrain(func() { drained <- p.server.Queued() })
			if lw := p.server.LastWrite(); !lw.IsZero() {
				t.Fatalf("LastWrite() before any write = %v, want zero", lw)
			}
			go p.readToEnd()

			before := time.Now()
			if err := p.server.Enqueue([]byte("RECEIPT\n\n"), []byte("\x00"), false); err != nil {
				t.Fatal(err)
			}
			if q := recvTimeout(t, drained, "OnDrain"); q != 0 {
				t.Errorf("Queued() inside OnDrain = %d, want 0", q)
			}
			first := p.server.LastWrite()
			if first.Before(before.Truncate(time.Microsecond)) {
				t.Fatalf("LastWrite() = %v, before the write started at %v", first, before)
			}

			if err := p.server.Enqueue([]byte("\n"), nil, false); err != nil {
				t.Fatal(err)
			}
			recvTimeout(t, drained, "second OnDrain")
			waitFor(t, "LastWrite to advance", func() bool { return p.server.LastWrite().After(first) })
		})
	}
}

// TestOnDrainMayEnqueue: frames queued from OnDrain are written by the same writer.
func TestOnDrainMayEnqueue(t *testing.T) {
	var resumed atomic.Int32
	p := transports[1].open(t, Options{})
	p.server.SetOnDrain(func() {
		if resumed.Add(1) <= 3 {
			p.server.Enqueue([]byte("more\n"), nil, false)
		}
	})
	if err := p.server.Enqueue([]byte("first\n"), nil, false); err != nil {
		t.Fatal(err)
	}
	want := "first\nmore\nmore\nmore\n"
	if got := p.readBytes(t, len(want)); string(got) != want {
		t.Errorf("received %q, want %q", got, want)
	}
	waitFor(t, "writer to exit", func() bool { return writerGoroutines() == 0 })
}

// TestWriterExitsWhenIdle: a writer exists while something is queued and is gone once the queue drains.
func TestWriterExitsWhenIdle(t *testing.T) {
	peer, server := pipePair(t, Options{})
	if n := writerGoroutines(); n != 0 {
		t.Fatalf("%d writer goroutines before any Enqueue", n)
	}
	if err := server.Enqueue([]byte("hello"), []byte(" world"), false); err != nil {
		t.Fatal(err)
	}
	// The pipe blocks the write until the peer reads, so the writer stays.
	waitFor(t, "one writer", func() bool { return writerGoroutines() == 1 })
	if err := server.Enqueue([]byte("!"), nil, false); err != nil {
		t.Fatal(err)
	}
	if n := writerGoroutines(); n != 1 {
		t.Errorf("%d writer goroutines after a second Enqueue, want 1", n)
	}
	if got := streamPeer(peer, server).readBytes(t, 12); string(got) != "hello world!" {
		t.Fatalf("received %q", got)
	}
	waitFor(t, "writer to exit", func() bool { return writerGoroutines() == 0 })
	o := &server.(*tcpConn).outbound
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending != nil || o.spare != nil || o.buffers != nil {
		t.Errorf("idle connection still holds queue memory: pending %v, spare %v, buffers %v", o.pending != nil, o.spare != nil, o.buffers != nil)
	}
}

func TestWriteTimeout(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			const limit = 256 << 10
			p := tr.open(t, Options{MaxQueuedBytes: limit, WriteTimeout: 100 * time.Millisecond})
			readErr := readAsync(p.server)
			fillUntilSlow(t, p.server, limit)
			if err := recvTimeout(t, readErr, "Read to fail"); !errors.Is(err, ErrWriteTimeout) {
				t.Errorf("Read = %v, want ErrWriteTimeout", err)
			}
			waitFor(t, "Enqueue to refuse", func() bool {
				return errors.Is(p.server.Enqueue([]byte("x"), nil, false), ErrClosed)
			})
			if err := p.server.Close(context.Background(), CloseNormal, ""); !errors.Is(err, ErrWriteTimeout) {
				t.Errorf("Close = %v, want ErrWriteTimeout", err)
			}
		})
	}
}

// The watchdog times each write call, not the writer's run: writes that keep succeeding for many times
// WriteTimeout are left alone.
func TestWriteTimeoutSpansManyWrites(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			const timeout = 30 * time.Millisecond
			p := tr.open(t, Options{WriteTimeout: timeout})
			readErr := readAsync(p.server)
			frame := bytes.Repeat([]byte("y"), 100)
			sent := 0
			for start := time.Now(); time.Since(start) < 10*timeout; {
				if err := p.server.Enqueue(nil, frame, false); err != nil {
					t.Fatalf("Enqueue after %d frames: %v", sent, err)
				}
				sent++
				got := p.readBytes(t, len(frame))
				if len(got) != len(frame) {
					t.Fatalf("read %d bytes, want %d", len(got), len(frame))
				}
				time.Sleep(time.Millisecond)
			}
			select {
			case err := <-readErr:
				t.Fatalf("Read failed while every write succeeded: %v", err)
			default:
			}
		})
	}
}

func TestEmptyFrameIgnored(t *testing.T) {
	_, server := pipePair(t, Options{})
	if err := server.Enqueue(nil, nil, false); err != nil {
		t.Fatal(err)
	}
	if q, n := server.Queued(), writerGoroutines(); q != 0 || n != 0 {
		t.Errorf("after an empty frame: Queued() = %d, %d writers; want 0, 0", q, n)
	}
}

func TestCloseCodes(t *testing.T) {
	tests := []struct {
		code CloseCode
		want bool
	}{
		{CloseNormal, true}, {CloseGoingAway, true}, {CloseTryAgainLater, true}, {1014, true},
		{4000, true}, {3000, true}, {1004, false}, {1005, false}, {1006, false}, {1015, false},
		{0, false}, {999, false}, {2999, false}, {5000, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			if got := tt.code.sendable(); got != tt.want {
				t.Errorf("sendable() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTruncateReason(t *testing.T) {
	tests := []struct {
		name, in string
		wantLen  int
	}{
		{"short", "bye", 3},
		{"exact", string(bytes.Repeat([]byte("a"), 123)), 123},
		{"ascii over", string(bytes.Repeat([]byte("a"), 200)), 123},
		{"two-byte runes", string(bytes.Repeat([]byte("é"), 100)), 122},
		{"four-byte runes", string(bytes.Repeat([]byte("😀"), 40)), 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncateReason(tt.in)
			if len(got) != tt.wantLen || got != tt.in[:len(got)] {
				t.Errorf("truncateReason = %d bytes, want the first %d", len(got), tt.wantLen)
			}
		})
	}
}
