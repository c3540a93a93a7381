package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTCPConnIdentity(t *testing.T) {
	client, server := tcpPair(t, Options{})
	if got := server.Transport(); got != "tcp" {
		t.Errorf("Transport() = %q, want tcp", got)
	}
	if got := server.Subprotocol(); got != "" {
		t.Errorf("Subprotocol() = %q, want empty", got)
	}
	if got, want := server.RemoteAddr(), client.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr() = %q, want %q", got, want)
	}
}

func TestTCPRead(t *testing.T) {
	client, server := tcpPair(t, Options{})
	want := "CONNECT\naccept-version:1.2\n\n\x00"
	go client.Write([]byte(want))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(server, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("read %q, want %q", got, want)
	}
	client.Close()
	if _, err := server.Read(got); err != io.EOF {
		t.Errorf("Read after the peer closed = %v, want io.EOF", err)
	}
}

// TestTCPCloseKeepsFramesDespiteUnreadInput: the peer sent bytes the server never read (a client
// pipelining frames behind a bad one). Closing such a socket outright resets it, and the reset can
// destroy the ERROR frame before the peer reads it; Close must deliver it.
func TestTCPCloseKeepsFramesDespiteUnreadInput(t *testing.T) {
	client, server := tcpPair(t, Options{})
	if _, err := client.Write(bytes.Repeat([]byte("SEND\ndestination:/q\n\nx\x00"), 1000)); err != nil {
		t.Fatal(err)
	}
	errorFrame := "ERROR\nmessage:malformed frame\n\n\x00"
	if err := server.Enqueue([]byte(errorFrame), nil, false); err != nil {
		t.Fatal(err)
	}
	// Wait until the frame is on its way, so that without the half-close the reset would race it.
	waitFor(t, "flush", func() bool { return server.Queued() == 0 })
	if err := server.Close(context.Background(), ClosePolicyViolation, "malformed frame"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	client.SetReadDeadline(time.Now().Add(waitTimeout))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Errorf("peer read ended with %v, want a clean end of stream", err)
	}
	if string(got) != errorFrame {
		t.Errorf("peer received %q, want %q", got, errorFrame)
	}
}

// TestTCPCoalescing holds the writer inside the drain callback, queues a backlog, and counts the write calls that
// carry it.
func TestTCPCoalescing(t *testing.T) {
	const maxBatch = 1000
	for _, tr := range transports[1:] {
		t.Run(tr.name, func(t *testing.T) {
			release := make(chan struct{})
			var drains atomic.Int32
			p := tr.open(t, Options{MaxBatchBytes: maxBatch})
			p.server.SetOnDrain(func() {
				if drains.Add(1) == 1 {
					<-release
				}
			})
			go func() {
				p.readToEnd()
			}()
			if err := p.server.Enqueue([]byte("CONNECTED\n\n\x00"), nil, false); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "first drain", func() bool { return drains.Load() == 1 })
			o := &p.server.(*tcpConn).outbound
			before := o.writeCalls.Load()
			tail := []byte(strings.Repeat("b", 19) + "\x00")
			for range 100 {
				if err := p.server.Enqueue([]byte("MESSAGE\n\n\n"), tail, false); err != nil {
					t.Fatal(err)
				}
			}
			close(release)
			waitFor(t, "second drain", func() bool { return drains.Load() == 2 })
			// 100 frames of 30 bytes, at most 1000 bytes per write: 33 frames per write.
			if got := o.writeCalls.Load() - before; got != 4 {
				t.Errorf("backlog of 100 frames took %d writes, want 4", got)
			}
		})
	}
}

// recordConn is a net.Conn that records every Write; reads block until Close.
type recordConn struct {
	mu     sync.Mutex
	writes [][]byte
	closed chan struct{}
	once   sync.Once
}

func newRecordConn() *recordConn { return &recordConn{closed: make(chan struct{})} }

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recordConn) recorded() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.writes))
	for i, w := range c.writes {
		out[i] = string(w)
	}
	return out
}

func (c *recordConn) Read([]byte) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}

func (c *recordConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *recordConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *recordConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *recordConn) SetDeadline(time.Time) error      { return nil }
func (c *recordConn) SetReadDeadline(time.Time) error  { return nil }
func (c *recordConn) SetWriteDeadline(time.Time) error { return nil }

// TestVectoredWriteLayout checks the write calls of one batch over a connection that takes writev: a
// plain net.Conn receives net.Buffers as one Write per iovec, which shows how heads and tails were laid
// out, and a copied run as one Write.
func TestVectoredWriteLayout(t *testing.T) {
	type frame struct{ head, tail string }
	big1, big2 := strings.Repeat("1", 4<<10), strings.Repeat("2", 4<<10)
	tests := []struct {
		name     string
		maxBatch int
		frames   []frame
		want     []string
	}{
		{
			name:     "small frames copied into one write",
			maxBatch: 1 << 10,
			frames:   []frame{{"a", ""}, {"b", ""}, {"c", "T1"}, {"d", ""}, {"", "T2"}, {"e", ""}, {"f", ""}},
			want:     []string{"abcT1dT2ef"},
		},
		{
			name:     "large frames vectored, heads without tails merged",
			maxBatch: 1 << 14,
			frames:   []frame{{"a", ""}, {"b", ""}, {"c", big1}, {"d", ""}, {"", big2}, {"e", ""}, {"f", ""}},
			want:     []string{"abc", big1, "d", big2, "ef"},
		},
		{
			name:     "a frame alone vectored, split at the batch bound",
			maxBatch: 4,
			frames:   []frame{{"aa", "11"}, {"bb", "22"}, {"ccc", "333"}},
			want:     []string{"aa", "11", "bb", "22", "ccc", "333"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newRecordConn()
			c := NewTCPConn(rc, Options{MaxBatchBytes: tt.maxBatch}).(*tcpConn)
			defer c.Abort()
			c.vectored = true
			b := &frameBatch{}
			for _, f := range tt.frames {
				b.push([]byte(f.head), []byte(f.tail), false)
			}
			if err := c.writeBatch(b); err != nil {
				t.Fatal(err)
			}
			if got := rc.recorded(); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("writes %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCopiedWriteLayout(t *testing.T) {
	rc := newRecordConn()
	c := NewTCPConn(rc, Options{MaxBatchBytes: 8}).(*tcpConn)
	defer c.Abort()
	if c.vectored {
		t.Fatal("a plain net.Conn must take the copying path")
	}
	b := &frameBatch{}
	for _, f := range [][2]string{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}, {"big-head", "big-tail"}, {"f", "6"}} {
		b.push([]byte(f[0]), []byte(f[1]), false)
	}
	if err := c.writeBatch(b); err != nil {
		t.Fatal(err)
	}
	want := []string{"a1b2c3d4", "e5", "big-head", "big-tail", "f6"}
	if got := rc.recorded(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("writes %q, want %q", got, want)
	}
}

func TestTCPCloseWithoutCloseWrite(t *testing.T) {
	rc := newRecordConn()
	c := NewTCPConn(rc, Options{})
	if err := c.Enqueue([]byte("bye"), nil, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background(), CloseNormal, ""); err != nil {
		t.Fatal(err)
	}
	if got := rc.recorded(); len(got) != 1 || got[0] != "bye" {
		t.Errorf("writes %q, want [bye]", got)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close = %v, want ErrClosed", err)
	}
}
