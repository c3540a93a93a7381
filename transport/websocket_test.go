package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

var stompSubprotocols = []string{"v12.stomp", "v11.stomp", "v10.stomp"}

func TestWebSocketSubprotocol(t *testing.T) {
	tests := []struct {
		name   string
		offers []string
		want   string
	}{
		{"server preference wins", []string{"v10.stomp", "v12.stomp"}, "v12.stomp"},
		{"only offer", []string{"v11.stomp"}, "v11.stomp"},
		{"no offer", nil, ""},
		{"unknown offer", []string{"foo"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newWSServer(t, WebSocketOptions{Subprotocols: stompSubprotocols})
			client, server := s.dial(t, tt.offers...)
			if got := server.Subprotocol(); got != tt.want {
				t.Errorf("server Subprotocol() = %q, want %q", got, tt.want)
			}
			if got := client.Subprotocol(); got != tt.want {
				t.Errorf("client Subprotocol() = %q, want %q", got, tt.want)
			}
			if got := server.Transport(); got != "ws" {
				t.Errorf("Transport() = %q, want ws", got)
			}
			if _, _, err := net.SplitHostPort(server.RemoteAddr()); err != nil {
				t.Errorf("RemoteAddr() = %q: %v", server.RemoteAddr(), err)
			}
		})
	}
}

func TestWebSocketHandshakeRejects(t *testing.T) {
	tests := []struct {
		name     string
		upgrade  bool
		origin   string // "" sends none; "same" sends the server's own origin
		wantCode int    // 101 when the upgrade must succeed
	}{
		{"disallowed origin", true, "https://evil.example", http.StatusForbidden},
		{"allowed origin pattern", true, "https://app.example.com", http.StatusSwitchingProtocols},
		{"same host", true, "same", http.StatusSwitchingProtocols},
		{"no origin", true, "", http.StatusSwitchingProtocols},
		{"plain GET", false, "", http.StatusUpgradeRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newWSServer(t, WebSocketOptions{OriginPatterns: []string{"*.example.com"}})
			req, err := http.NewRequest(http.MethodGet, s.srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.upgrade {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			}
			switch tt.origin {
			case "":
			case "same":
				req.Header.Set("Origin", s.srv.URL)
			default:
				req.Header.Set("Origin", tt.origin)
			}
			transport := &http.Transport{DisableKeepAlives: true}
			defer transport.CloseIdleConnections()
			resp, err := (&http.Client{Transport: transport}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if tt.wantCode == http.StatusSwitchingProtocols {
				recvTimeout(t, s.conns, "accepted connection").Abort()
				return
			}
			if err := recvTimeout(t, s.errs, "handshake error"); err == nil {
				t.Error("AcceptWebSocket returned no error")
			}
		})
	}
}

func TestWebSocketReadConcatenatesMessages(t *testing.T) {
	client, server := newWSServer(t, WebSocketOptions{}).dial(t)
	parts := []struct {
		typ  websocket.MessageType
		data string
	}{
		{websocket.MessageText, "SEND\ndestination:/topic/a\n"},
		{websocket.MessageBinary, "content-length:3\n\n"},
		{websocket.MessageText, ""},
		{websocket.MessageBinary, "a\x00b\x00"},
		{websocket.MessageText, "\n"},
	}
	var want bytes.Buffer
	for _, p := range parts {
		if err := client.Write(context.Background(), p.typ, []byte(p.data)); err != nil {
			t.Fatal(err)
		}
		want.WriteString(p.data)
	}
	got := make([]byte, 0, want.Len())
	buf := make([]byte, 5) // smaller than most messages, so reads end inside messages too
	for len(got) < want.Len() {
		n, err := server.Read(buf)
		if err != nil {
			t.Fatalf("Read after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("read %q, want %q", got, want.Bytes())
	}
}

func TestWebSocketReadLimit(t *testing.T) {
	client, server := newWSServer(t, WebSocketOptions{ReadLimit: 100}).dial(t)
	go client.Write(context.Background(), websocket.MessageText, bytes.Repeat([]byte("x"), 200))
	buf := make([]byte, 1024)
	var err error
	for err == nil {
		_, err = server.Read(buf)
	}
	if !errors.Is(err, ErrMessageTooBig) {
		t.Fatalf("Read error = %v, want ErrMessageTooBig", err)
	}
	_, cerr := readUntilClose(client)
	if got := websocket.CloseStatus(cerr); got != websocket.StatusMessageTooBig {
		t.Errorf("client saw close %v (%v), want %v", got, cerr, websocket.StatusMessageTooBig)
	}
}

func TestWebSocketReadPeerClose(t *testing.T) {
	tests := []struct {
		name    string
		close   func(c *websocket.Conn)
		wantEOF bool
		check   func(t *testing.T, err error)
	}{
		{"normal", func(c *websocket.Conn) { c.Close(websocket.StatusNormalClosure, "") }, true, nil},
		{"going away", func(c *websocket.Conn) { c.Close(websocket.StatusGoingAway, "bye") }, true, nil},
		{"application code", func(c *websocket.Conn) { c.Close(4000, "custom") }, false, func(t *testing.T, err error) {
			if got := websocket.CloseStatus(err); got != 4000 {
				t.Errorf("CloseStatus = %v, want 4000", got)
			}
		}},
		{"no close frame", func(c *websocket.Conn) { c.CloseNow() }, false, func(t *testing.T, err error) {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error %v does not wrap io.ErrUnexpectedEOF", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := newWSServer(t, WebSocketOptions{}).dial(t)
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				tt.close(client)
			}()
			_, err := server.Read(make([]byte, 16))
			recvTimeout(t, closed, "client close")
			if got := err == io.EOF; got != tt.wantEOF {
				t.Fatalf("Read error = %v, want io.EOF: %v", err, tt.wantEOF)
			}
			if !tt.wantEOF && errors.Is(err, io.EOF) {
				t.Errorf("error %v matches io.EOF for an unclean close", err)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

// checkFrames verifies that msgs carry exactly frames, in order, each message holding whole frames of
// the message's own type.
func checkFrames(t *testing.T, msgs []message, frames []testFrame) {
	t.Helper()
	i := 0
	for m, msg := range msgs {
		rest := msg.data
		for len(rest) > 0 {
			if i == len(frames) {
				t.Fatalf("message %d carries more than the %d frames sent: %q", m, len(frames), rest)
			}
			f := frames[i]
			want := f.head + f.tail
			if !strings.HasPrefix(string(rest), want) {
				t.Fatalf("message %d: frame %d = %q, want %q", m, i, rest[:min(len(rest), len(want))], want)
			}
			if wantTyp := wsType(f.binary); msg.typ != wantTyp {
				t.Fatalf("message %d holding frame %d is %v, want %v", m, i, msg.typ, wantTyp)
			}
			rest = rest[len(want):]
			i++
		}
	}
	if i != len(frames) {
		t.Fatalf("received %d frames, want %d", i, len(frames))
	}
}

type testFrame struct {
	head, tail string
	binary     bool
}

func (f testFrame) size() int { return len(f.head) + len(f.tail) }

func wsType(binary bool) websocket.MessageType {
	if binary {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

func makeFrames(n int, binaryEvery int) ([]testFrame, int) {
	frames := make([]testFrame, n)
	total := 0
	for i := range frames {
		frames[i] = testFrame{
			head:   fmt.Sprintf("MESSAGE\nid:%04d\n\n", i),
			tail:   fmt.Sprintf("body-%04d\x00", i),
			binary: binaryEvery > 0 && (i/binaryEvery)%2 == 1,
		}
		total += frames[i].size()
	}
	return frames, total
}

func TestWebSocketEnqueueOrderAndTypes(t *testing.T) {
	tests := []struct {
		name        string
		binaryEvery int
	}{
		{"all text", 0},
		{"alternating", 1},
		{"runs of three", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := newWSServer(t, WebSocketOptions{}).dial(t)
			frames, total := makeFrames(50, tt.binaryEvery)
			for _, f := range frames {
				if err := server.Enqueue([]byte(f.head), []byte(f.tail), f.binary); err != nil {
					t.Fatal(err)
				}
			}
			checkFrames(t, readMessages(t, client, total), frames)
		})
	}
}

// TestWebSocketCoalescing holds the writer inside OnDrain after a first frame, queues many frames behind
// it, then lets it go: the backlog must arrive in few messages, none over MaxBatchBytes, split by type.
func TestWebSocketCoalescing(t *testing.T) {
	const maxBatch = 1000
	tests := []struct {
		name        string
		binaryEvery int
		maxMessages int
	}{
		// 100 frames of 30 bytes: 33 per message.
		{"one type", 0, 1 + 4},
		// Runs of 25 frames of one type: each run is 750 bytes, one message.
		{"runs of 25", 25, 1 + 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			var drains atomic.Int32
			opts := WebSocketOptions{Options: Options{MaxBatchBytes: maxBatch}}
			client, server := newWSServer(t, opts).dial(t)
			server.SetOnDrain(func() {
				if drains.Add(1) == 1 {
					<-release
				}
			})
			first := testFrame{head: "CONNECTED\n\n", tail: "\x00"}
			if err := server.Enqueue([]byte(first.head), []byte(first.tail), false); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "first drain", func() bool { return drains.Load() == 1 })

			frames := make([]testFrame, 100)
			total := first.size()
			for i := range frames {
				head := fmt.Sprintf("MSG\nid:%04d\n\n", i)
				frames[i] = testFrame{
					head:   head,
					tail:   strings.Repeat("b", 29-len(head)) + "\x00",
					binary: tt.binaryEvery > 0 && (i/tt.binaryEvery)%2 == 1,
				}
				if err := server.Enqueue([]byte(frames[i].head), []byte(frames[i].tail), frames[i].binary); err != nil {
					t.Fatal(err)
				}
				total += 30
			}
			close(release)

			msgs := readMessages(t, client, total)
			checkFrames(t, msgs, append([]testFrame{first}, frames...))
			if len(msgs) > tt.maxMessages {
				t.Errorf("%d frames arrived in %d messages, want at most %d", len(frames)+1, len(msgs), tt.maxMessages)
			}
			for i, m := range msgs {
				if len(m.data) > maxBatch {
					t.Errorf("message %d has %d bytes, over MaxBatchBytes %d", i, len(m.data), maxBatch)
				}
			}
			// The client can see the last message before the writer has counted its write.
			waitFor(t, "second drain", func() bool { return drains.Load() == 2 })
			if got := server.(*wsConn).writeCalls.Load(); got != uint64(len(msgs)) {
				t.Errorf("writeCalls = %d, want one per message (%d)", got, len(msgs))
			}
		})
	}
}

// TestWebSocketHeartBeatsStandAlone queues heart-beats among frames while the writer is held, so that
// all go in one batch: every heart-beat must arrive as a message of its own, the frames around it
// still coalesced.
func TestWebSocketHeartBeatsStandAlone(t *testing.T) {
	release := make(chan struct{})
	var drains atomic.Int32
	client, server := newWSServer(t, WebSocketOptions{}).dial(t)
	server.SetOnDrain(func() {
		if drains.Add(1) == 1 {
			<-release
		}
	})
	if err := server.Enqueue([]byte("CONNECTED\n\n"), []byte("\x00"), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first drain", func() bool { return drains.Load() == 1 })
	queued := []string{"\n", "RECEIPT\nreceipt-id:a\n\n\x00", "RECEIPT\nreceipt-id:b\n\n\x00", "\r\n", "\n",
		"MESSAGE\n\nc\x00", "\n"}
	total := len("CONNECTED\n\n\x00")
	for _, f := range queued {
		if err := server.Enqueue(nil, []byte(f), false); err != nil {
			t.Fatal(err)
		}
		total += len(f)
	}
	close(release)
	var got []string
	for _, m := range readMessages(t, client, total) {
		got = append(got, string(m.data))
	}
	want := []string{"CONNECTED\n\n\x00", "\n", "RECEIPT\nreceipt-id:a\n\n\x00RECEIPT\nreceipt-id:b\n\n\x00", "\r\n", "\n",
		"MESSAGE\n\nc\x00", "\n"}
	if !slices.Equal(got, want) {
		t.Errorf("messages %q, want %q", got, want)
	}
}

func TestWebSocketFrameLargerThanBatch(t *testing.T) {
	tests := []struct {
		name       string
		head, tail []byte
	}{
		{"head and tail", []byte("MESSAGE\n\n"), bytes.Repeat([]byte("b"), 5000)},
		{"head only", bytes.Repeat([]byte("h"), 3000), nil},
		{"tail only", nil, bytes.Repeat([]byte("t"), 3000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := newWSServer(t, WebSocketOptions{Options: Options{MaxBatchBytes: 1024}}).dial(t)
			if err := server.Enqueue(tt.head, tt.tail, true); err != nil {
				t.Fatal(err)
			}
			msgs := readMessages(t, client, len(tt.head)+len(tt.tail))
			if len(msgs) != 1 {
				t.Fatalf("frame arrived in %d messages, want 1", len(msgs))
			}
			if want := append(append([]byte{}, tt.head...), tt.tail...); !bytes.Equal(msgs[0].data, want) || msgs[0].typ != websocket.MessageBinary {
				t.Errorf("message %v of %d bytes, want binary of %d bytes", msgs[0].typ, len(msgs[0].data), len(want))
			}
		})
	}
}

// TestWebSocketCloseHandshake covers the ways a Close meets the peer and the caller's own Read: the
// close frame must follow the queued frames, and Close must stay bounded well under the library's own
// 5 s wait.
func TestWebSocketCloseHandshake(t *testing.T) {
	const bound = closeGrace + 3*time.Second
	tests := []struct {
		name           string
		peerAnswers    bool
		concurrentRead bool
	}{
		{"peer answers", true, false},
		{"peer answers, read in progress", true, true},
		{"peer silent", false, false},
		{"peer silent, read in progress", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := newWSServer(t, WebSocketOptions{}).dial(t)
			var readErr <-chan error
			if tt.concurrentRead {
				readErr = readAsync(server)
			}
			frames, _ := makeFrames(20, 0)
			for _, f := range frames {
				if err := server.Enqueue([]byte(f.head), []byte(f.tail), f.binary); err != nil {
					t.Fatal(err)
				}
			}
			if !tt.peerAnswers {
				// Let the frames reach the client before it stops reading, so that the test is about
				// the handshake rather than the flush.
				waitFor(t, "flush", func() bool { return server.Queued() == 0 })
			}

			type result struct {
				msgs []message
				err  error
			}
			clientDone := make(chan result, 1)
			if tt.peerAnswers {
				go func() {
					msgs, err := readUntilClose(client)
					clientDone <- result{msgs, err}
				}()
			}

			start := time.Now()
			err := server.Close(context.Background(), ClosePolicyViolation, "bad frame")
			elapsed := time.Since(start)
			if err != nil {
				t.Errorf("Close: %v", err)
			}
			if elapsed > bound {
				t.Errorf("Close took %v, want under %v", elapsed, bound)
			}
			if tt.concurrentRead {
				if err := recvTimeout(t, readErr, "concurrent Read to end"); !errors.Is(err, ErrClosed) {
					t.Errorf("concurrent Read error = %v, want ErrClosed", err)
				}
			}
			if _, err := server.Read(make([]byte, 8)); !errors.Is(err, ErrClosed) {
				t.Errorf("Read after Close = %v, want ErrClosed", err)
			}
			if err := server.Enqueue([]byte("x"), nil, false); !errors.Is(err, ErrClosed) {
				t.Errorf("Enqueue after Close = %v, want ErrClosed", err)
			}

			var msgs []message
			var cerr error
			if tt.peerAnswers {
				r := recvTimeout(t, clientDone, "client to see the close")
				msgs, cerr = r.msgs, r.err
			} else {
				msgs, cerr = readUntilClose(client)
			}
			checkFrames(t, msgs, frames)
			if got := websocket.CloseStatus(cerr); got != websocket.StatusPolicyViolation {
				t.Errorf("client saw %v, want close %v", cerr, websocket.StatusPolicyViolation)
			}
			var ce websocket.CloseError
			if errors.As(cerr, &ce) && ce.Reason != "bad frame" {
				t.Errorf("close reason %q, want %q", ce.Reason, "bad frame")
			}
		})
	}
}

func TestWebSocketCloseReasonTruncated(t *testing.T) {
	client, server := newWSServer(t, WebSocketOptions{}).dial(t)
	go server.Close(context.Background(), CloseTryAgainLater, strings.Repeat("é", 100))
	_, err := readUntilClose(client)
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("client saw %v, want a close frame", err)
	}
	if ce.Code != websocket.StatusTryAgainLater {
		t.Errorf("code %v, want %v", ce.Code, websocket.StatusTryAgainLater)
	}
	if len(ce.Reason) > maxCloseReason || !utf8.ValidString(ce.Reason) || ce.Reason == "" {
		t.Errorf("reason of %d bytes (valid UTF-8: %v), want 1..%d valid bytes", len(ce.Reason), utf8.ValidString(ce.Reason), maxCloseReason)
	}
	server.Abort()
}

// unwrappingWriter is middleware's ResponseWriter: it hides Hijack but exposes the writer beneath.
type unwrappingWriter struct{ http.ResponseWriter }

func (u unwrappingWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

func TestAcceptThroughResponseWriterWrappers(t *testing.T) {
	t.Run("middleware with Unwrap", func(t *testing.T) {
		conns := make(chan Conn, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := AcceptWebSocket(unwrappingWriter{w}, r, WebSocketOptions{})
			if err != nil {
				t.Errorf("AcceptWebSocket: %v", err)
				return
			}
			conns <- c
		}))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer client.CloseNow()
		server := recvTimeout(t, conns, "accepted connection")
		defer server.Abort()
		// Close relies on the hijacked connection: it must stay bounded with a silent peer.
		start := time.Now()
		if err := server.Close(context.Background(), CloseNormal, ""); err != nil {
			t.Errorf("Close: %v", err)
		}
		if elapsed := time.Since(start); elapsed > closeGrace+3*time.Second {
			t.Errorf("Close took %v", elapsed)
		}
	})
	t.Run("not hijackable", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		rec := httptest.NewRecorder()
		if _, err := AcceptWebSocket(rec, req, WebSocketOptions{}); err == nil {
			t.Fatal("AcceptWebSocket succeeded on a writer that cannot be hijacked")
		}
		if rec.Code != http.StatusNotImplemented {
			t.Errorf("status %d, want %d", rec.Code, http.StatusNotImplemented)
		}
	})
}
