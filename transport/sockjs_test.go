package transport

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// sockjsServer is a SockJSHandler under /stomp on an httptest server; every session it opens is sent
// on conns, and aborted when the test ends.
type sockjsServer struct {
	h     *SockJSHandler
	srv   *httptest.Server
	conns chan Conn
}

func newSockJSServer(t *testing.T, opts SockJSOptions) *sockjsServer {
	t.Helper()
	s := &sockjsServer{conns: make(chan Conn, 16)}
	var opened []Conn
	if opts.Open == nil {
		opts.Open = func(http.ResponseWriter, *http.Request) (func(Conn), bool) {
			return func(c Conn) {
				opened = append(opened, c)
				s.conns <- c
			}, true
		}
	}
	s.h = NewSockJSHandler("/stomp", opts)
	mux := http.NewServeMux()
	mux.Handle("/stomp", s.h)
	mux.Handle("/stomp/", s.h)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		for _, c := range opened {
			c.Abort()
		}
		s.srv.Close()
	})
	return s
}

func (s *sockjsServer) url(path string) string { return s.srv.URL + "/stomp" + path }

// do sends a request and returns the response with its whole body.
func (s *sockjsServer) do(t *testing.T, method, path, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.url(path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// decodeMessages decodes an a[...] frame.
func decodeMessages(t *testing.T, frame string) []string {
	t.Helper()
	frame = strings.TrimSpace(frame)
	if !strings.HasPrefix(frame, "a") {
		t.Fatalf("frame %q is not a message frame", frame)
	}
	var msgs []string
	if err := json.Unmarshal([]byte(frame[1:]), &msgs); err != nil {
		t.Fatalf("message frame %q: %v", frame, err)
	}
	return msgs
}

func TestSockJSEndpoints(t *testing.T) {
	s := newSockJSServer(t, SockJSOptions{})
	if resp, body := s.do(t, "GET", "", ""); resp.StatusCode != 200 || body != "Welcome to SockJS!\n" {
		t.Errorf("GET /stomp = %d %q", resp.StatusCode, body)
	}
	resp, body := s.do(t, "GET", "/info", "")
	var info struct {
		WebSocket    bool     `json:"websocket"`
		CookieNeeded bool     `json:"cookie_needed"`
		Origins      []string `json:"origins"`
		Entropy      uint64   `json:"entropy"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /info = %d %q (%v)", resp.StatusCode, body, err)
	}
	if !info.WebSocket || info.CookieNeeded || !strings.Contains(resp.Header.Get("Cache-Control"), "no-cache") {
		t.Errorf("info = %+v, Cache-Control %q", info, resp.Header.Get("Cache-Control"))
	}
	resp, _ = s.do(t, "OPTIONS", "/info", "", "Origin", s.srv.URL, "Access-Control-Request-Headers", "content-type")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Methods") != "OPTIONS, GET" ||
		resp.Header.Get("Access-Control-Allow-Origin") != s.srv.URL || resp.Header.Get("Access-Control-Allow-Headers") != "content-type" {
		t.Errorf("OPTIONS /info = %d %v", resp.StatusCode, resp.Header)
	}
	for _, path := range []string{"/iframe.html", "/000/abc/jsonp", "/000/abc/htmlfile", "/000/a.b/xhr", "/000/abc", "/000//xhr", "/000/abc/xhr/x"} {
		if resp, _ := s.do(t, "POST", path, ""); resp.StatusCode != 404 {
			t.Errorf("POST %s = %d, want 404", path, resp.StatusCode)
		}
	}
	if resp, _ := s.do(t, "GET", "/000/abc/xhr", ""); resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
		t.Errorf("GET xhr = %d, Allow %q; want 405 with Allow", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if s.h.Sessions() != 0 {
		t.Errorf("%d sessions opened by requests that open none", s.h.Sessions())
	}
}

func TestSockJSOrigin(t *testing.T) {
	s := newSockJSServer(t, SockJSOptions{OriginPatterns: []string{"app.example"}})
	for _, path := range []string{"/info", "/000/o1/xhr"} {
		resp, _ := s.do(t, "POST", path, "", "Origin", "https://evil.example")
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s from a foreign origin = %d with CORS %q; want 403 without", path, resp.StatusCode,
				resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	resp, body := s.do(t, "POST", "/000/o2/xhr", "", "Origin", "https://app.example")
	if resp.StatusCode != 200 || body != "o\n" || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("xhr from an allowed origin = %d %q, CORS %v", resp.StatusCode, body, resp.Header)
	}
	if s.h.Sessions() != 1 {
		t.Errorf("%d sessions, want the allowed one", s.h.Sessions())
	}
}

func TestSockJSPolling(t *testing.T) {
	s := newSockJSServer(t, SockJSOptions{})
	if resp, body := s.do(t, "POST", "/000/p/xhr", ""); resp.StatusCode != 200 || body != "o\n" ||
		resp.Header.Get("Content-Type") != "application/javascript; charset=UTF-8" {
		t.Fatalf("first poll = %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	c := recvTimeout(t, s.conns, "the session")
	if c.Transport() != "sockjs" {
		t.Errorf("Transport() = %q", c.Transport())
	}
	if resp, _ := s.do(t, "POST", "/000/p/xhr_send", `["hello ","wörld"]`); resp.StatusCode != 204 {
		t.Fatalf("xhr_send = %d", resp.StatusCode)
	}
	buf := make([]byte, 64)
	var got []byte
	for len(got) < len("hello wörld") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "hello wörld" {
		t.Errorf("read %q", got)
	}

	texts := []string{"quote \" backslash \\ newline \n tab \t nul \x00", "✓ \u2028 \u00ad \ufeff 😀"}
	for _, txt := range texts {
		if err := c.Enqueue([]byte(txt[:3]), []byte(txt[3:]), false); err != nil {
			t.Fatal(err)
		}
	}
	_, body := s.do(t, "POST", "/000/p/xhr", "")
	if msgs := decodeMessages(t, body); len(msgs) != 2 || msgs[0] != texts[0] || msgs[1] != texts[1] {
		t.Errorf("poll = %q, decoded %q", body, msgs)
	}
	if strings.ContainsAny(body, "\u2028\u00ad\ufeff\x00") {
		t.Errorf("poll %q carries characters that must be escaped", body)
	}
	if c.Queued() != 0 || c.Written() == 0 || c.LastWrite().IsZero() {
		t.Errorf("Queued %d Written %d LastWrite %v after the poll", c.Queued(), c.Written(), c.LastWrite())
	}

	// A second receiver while one waits is told so; the first keeps the session.
	waiting := make(chan string, 1)
	go func() {
		_, body := s.do(t, "POST", "/000/p/xhr", "")
		waiting <- body
	}()
	waitFor(t, "the poll to attach", func() bool {
		sc := c.(*sockjsConn)
		sc.mu.Lock()
		defer sc.mu.Unlock()
		return sc.receiver
	})
	if _, body := s.do(t, "POST", "/000/p/xhr", ""); body != "c[2010,\"Another connection still open\"]\n" {
		t.Errorf("second receiver got %q", body)
	}
	if err := c.Enqueue(nil, []byte("late"), false); err != nil {
		t.Fatal(err)
	}
	if body := recvTimeout(t, waiting, "the waiting poll"); body != "a[\"late\"]\n" {
		t.Errorf("waiting poll got %q", body)
	}

	// Close: what is queued, then the close frame, which later requests get too.
	if err := c.Enqueue(nil, []byte("last"), false); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close(context.Background(), CloseNormal, "bye") }()
	if _, body := s.do(t, "POST", "/000/p/xhr", ""); body != "a[\"last\"]\n" {
		t.Errorf("poll after Close = %q", body)
	}
	if _, body := s.do(t, "POST", "/000/p/xhr", ""); body != "c[1000,\"bye\"]\n" {
		t.Errorf("poll after the flush = %q", body)
	}
	if err := recvTimeout(t, closed, "Close"); err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, body := s.do(t, "POST", "/000/p/xhr", ""); body != "c[1000,\"bye\"]\n" {
		t.Errorf("poll after the end = %q", body)
	}
	if err := c.Enqueue(nil, []byte("x"), false); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close = %v", err)
	}
	if _, err := c.Read(buf); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
}

// streamFrames reads the frames of a streaming response (xhr_streaming or eventsource) until it ends.
func streamFrames(t *testing.T, resp *http.Response, eventsource bool) []string {
	t.Helper()
	defer resp.Body.Close()
	var frames []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if eventsource {
			f, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			line = f
		}
		if line != "" && line != strings.Repeat("h", 2048) {
			frames = append(frames, line)
		}
	}
	return frames
}

func TestSockJSStreaming(t *testing.T) {
	for _, tr := range []string{"xhr_streaming", "eventsource"} {
		t.Run(tr, func(t *testing.T) {
			s := newSockJSServer(t, SockJSOptions{StreamLimit: 4096})
			method := "POST"
			if tr == "eventsource" {
				method = "GET"
			}
			open := func() *http.Response {
				req, _ := http.NewRequest(method, s.url("/000/s/"+tr), nil)
				resp, err := s.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			resp := open()
			c := recvTimeout(t, s.conns, "the session")
			msg := strings.Repeat("m", 1000)
			for range 10 {
				if err := c.Enqueue(nil, []byte(msg), false); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			frames := streamFrames(t, resp, tr == "eventsource")
			if len(frames) == 0 || frames[0] != "o" {
				t.Fatalf("first response frames %q", frames)
			}
			for _, f := range frames[1:] {
				got = append(got, decodeMessages(t, f)...)
			}
			if len(got) >= 10 {
				t.Fatalf("the first response carried all %d messages past a 4 KiB stream limit", len(got))
			}
			// The response ended at the limit; the next carries on where it stopped.
			for _, f := range streamFramesUntil(t, open(), tr == "eventsource", 10-len(got), c) {
				got = append(got, decodeMessages(t, f)...)
			}
			if len(got) != 10 {
				t.Fatalf("received %d of 10 messages", len(got))
			}
		})
	}
}

// streamFramesUntil reads message frames from a streaming response until n messages came, then closes
// the session so that the response ends.
func streamFramesUntil(t *testing.T, resp *http.Response, eventsource bool, n int, c Conn) []string {
	t.Helper()
	defer resp.Body.Close()
	var frames []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	count := 0
	for count < n && sc.Scan() {
		line := sc.Text()
		if eventsource {
			line = strings.TrimPrefix(line, "data: ")
		}
		if strings.HasPrefix(line, "a") {
			frames = append(frames, line)
			count += len(decodeMessages(t, line))
		}
	}
	c.Abort()
	return frames
}

func TestSockJSHeartbeat(t *testing.T) {
	s := newSockJSServer(t, SockJSOptions{Heartbeat: 30 * time.Millisecond})
	req, _ := http.NewRequest("POST", s.url("/000/h/xhr_streaming"), nil)
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	c := recvTimeout(t, s.conns, "the session")
	sc := bufio.NewScanner(resp.Body)
	beats := 0
	for beats < 3 && sc.Scan() {
		if sc.Text() == "h" {
			beats++
		}
	}
	c.Abort()
	resp.Body.Close()
	if beats < 3 {
		t.Fatalf("%d heartbeat frames before the response ended", beats)
	}
	// A poll waiting with nothing to say is answered with a heartbeat.
	if _, body := s.do(t, "POST", "/000/h2/xhr", ""); body != "o\n" {
		t.Fatalf("open poll = %q", body)
	}
	c2 := recvTimeout(t, s.conns, "the second session")
	if _, body := s.do(t, "POST", "/000/h2/xhr", ""); body != "h\n" {
		t.Errorf("idle poll = %q, want a heartbeat", body)
	}
	c2.Abort()
}

func TestSockJSClientGone(t *testing.T) {
	s := newSockJSServer(t, SockJSOptions{DisconnectDelay: 50 * time.Millisecond})
	s.do(t, "POST", "/000/g/xhr", "")
	c := recvTimeout(t, s.conns, "the session")
	read := readAsync(c)
	if err := recvTimeout(t, read, "Read to end"); !errors.Is(err, io.EOF) {
		t.Errorf("Read after the client stopped polling = %v, want io.EOF", err)
	}
	if err := c.Enqueue(nil, []byte("x"), false); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue to a gone client = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Close(ctx, CloseNormal, ""); err == nil {
		t.Error("Close reported a close frame written to a client that is gone")
	}
	waitFor(t, "the session to be forgotten", func() bool { return s.h.Sessions() == 0 })
}

func TestSockJSSendErrors(t *testing.T) {
	s := newSockJSServer(t, SockJSOptions{ReadLimit: 1024})
	if resp, _ := s.do(t, "POST", "/000/none/xhr_send", `["x"]`); resp.StatusCode != 404 {
		t.Errorf("xhr_send to an unknown session = %d", resp.StatusCode)
	}
	s.do(t, "POST", "/000/e/xhr", "")
	c := recvTimeout(t, s.conns, "the session")
	for _, body := range []string{"", "[", `{"a":1}`, `[1,2]`} {
		if resp, msg := s.do(t, "POST", "/000/e/xhr_send", body); resp.StatusCode != 400 || msg == "" {
			t.Errorf("xhr_send %q = %d %q, want 400 with a reason", body, resp.StatusCode, msg)
		}
	}
	if resp, _ := s.do(t, "POST", "/000/e/xhr_send", `["`+strings.Repeat("x", 1500)+`"]`); resp.StatusCode != 413 {
		t.Errorf("xhr_send of a message over the limit = %d, want 413", resp.StatusCode)
	}
	if _, err := c.Read(make([]byte, 16)); !errors.Is(err, ErrMessageTooBig) {
		t.Errorf("Read after a message over the limit = %v", err)
	}
}

func TestSockJSEnqueueBounds(t *testing.T) {
	s := newSockJSServer(t, SockJSOptions{Options: Options{MaxQueuedBytes: 1000}})
	s.do(t, "POST", "/000/b/xhr", "")
	c := recvTimeout(t, s.conns, "the session")
	if err := c.Enqueue([]byte("ok "), []byte{0xff, 0xfe}, true); !errors.Is(err, ErrNotText) {
		t.Errorf("Enqueue of bytes that are not UTF-8 = %v, want ErrNotText", err)
	}
	big := []byte(strings.Repeat("b", 2000))
	if err := c.Enqueue(nil, big, false); err != nil {
		t.Errorf("a frame over the bound into an empty queue = %v, want it accepted", err)
	}
	if err := c.Enqueue(nil, []byte("more"), false); !errors.Is(err, ErrSlowConsumer) {
		t.Errorf("Enqueue past the bound = %v, want ErrSlowConsumer", err)
	}
	if _, body := s.do(t, "POST", "/000/b/xhr", ""); len(decodeMessages(t, body)) != 1 {
		t.Errorf("poll = %q", body)
	}
}

func TestSockJSSessionBoundToAddress(t *testing.T) {
	conns := make(chan Conn, 1)
	h := NewSockJSHandler("/stomp", SockJSOptions{Open: func(http.ResponseWriter, *http.Request) (func(Conn), bool) {
		return func(c Conn) { conns <- c }, true
	}})
	serve := func(path, remote, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/stomp"+path, strings.NewReader(body))
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := serve("/0/bound/xhr", "10.0.0.1:1000", ""); w.Body.String() != "o\n" {
		t.Fatalf("open = %d %q", w.Code, w.Body.String())
	}
	c := recvTimeout(t, conns, "the session")
	defer c.Abort()
	for _, path := range []string{"/0/bound/xhr", "/0/bound/xhr_send"} {
		if w := serve(path, "10.0.0.2:1000", `["SEND"]`); w.Code != 404 {
			t.Errorf("%s from another address = %d, want 404", path, w.Code)
		}
	}
	if w := serve("/0/bound/xhr_send", "10.0.0.1:2000", `["x"]`); w.Code != 204 {
		t.Errorf("xhr_send from the session's address, another port = %d", w.Code)
	}
}

func TestSockJSWebSocket(t *testing.T) {
	s := newSockJSServer(t, SockJSOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url("/000/w/websocket"), "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	read := func() string {
		_, p, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(p)
	}
	if f := read(); f != "o" {
		t.Fatalf("first frame %q", f)
	}
	c := recvTimeout(t, s.conns, "the session")
	_ = ws.Write(ctx, websocket.MessageText, []byte(`["one ","two "]`))
	_ = ws.Write(ctx, websocket.MessageText, []byte(`"three"`))
	var got []byte
	buf := make([]byte, 64)
	for len(got) < len("one two three") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "one two three" {
		t.Errorf("read %q", got)
	}
	if err := c.Enqueue(nil, []byte("down"), false); err != nil {
		t.Fatal(err)
	}
	if f := read(); f != `a["down"]` {
		t.Errorf("message frame %q", f)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close(ctx, ClosePolicyViolation, "because") }()
	if f := read(); f != `c[1008,"because"]` {
		t.Errorf("close frame %q", f)
	}
	if err := recvTimeout(t, closed, "Close"); err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after the close frame: %v, want a normal WebSocket close", err)
	}

	// A client that closes its WebSocket ends the session: the reader sees io.EOF.
	ws2, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url("/000/w2/websocket"), "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c2 := recvTimeout(t, s.conns, "the second session")
	_ = ws2.Close(websocket.StatusNormalClosure, "")
	if err := recvTimeout(t, readAsync(c2), "Read to end"); !errors.Is(err, io.EOF) {
		t.Errorf("Read after the WebSocket closed = %v, want io.EOF", err)
	}
}

func TestAppendSockJSString(t *testing.T) {
	for _, s := range []string{"", "plain", "\x00\x01\x1f\x7f", "\"\\/", "\u0080\u009f\u00ad\u0600\u070f\u17b4\u200c\u2028\u2029\u2060\ufeff\ufff0\uffff",
		"ünïcödé ✓ 😀", strings.Repeat("é", 1000)} {
		b, err := appendSockJSString(nil, []byte(s))
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		var back string
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("%q encoded as %s decodes to %q (%v)", s, b, back, err)
		}
		for _, r := range string(b) {
			if r < 0x20 || (r >= 0x7f && sockjsEscaped(r)) {
				t.Errorf("%q encoded as %s carries %U unescaped", s, b, r)
			}
		}
	}
	for _, bad := range [][]byte{{0xff}, {'a', 0xc3}, {0xed, 0xa0, 0x80}} {
		if _, err := appendSockJSString(nil, bad); !errors.Is(err, errNotText) {
			t.Errorf("%x: err %v, want errNotText", bad, err)
		}
	}
}

func FuzzSockJSString(f *testing.F) {
	f.Add([]byte("CONNECT\naccept-version:1.2\n\n\x00"))
	f.Add([]byte{0xe2, 0x80, 0xa8, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := appendSockJSString(nil, p)
		if !utf8.Valid(p) {
			if err == nil {
				t.Fatalf("%x is not UTF-8 and was encoded", p)
			}
			return
		}
		var back string
		if err := json.Unmarshal(b, &back); err != nil || back != string(p) {
			t.Fatalf("%q encoded as %s decodes to %q (%v)", p, b, back, err)
		}
	})
}
