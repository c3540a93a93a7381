package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// SockJS defaults, those of the protocol's reference servers.
const (
	// DefaultSockJSHeartbeat is how long a receiving request may go without a frame before it is sent
	// the heartbeat frame "h", so that proxies do not time it out.
	DefaultSockJSHeartbeat = 25 * time.Second
	// DefaultSockJSDisconnectDelay is how long a session waits for its next receiving request before
	// counting the client as gone, and how long an ended session still answers its close frame.
	DefaultSockJSDisconnectDelay = 5 * time.Second
	// DefaultSockJSStreamLimit is the bytes an xhr_streaming or eventsource response carries before the
	// server ends it and the client opens the next, so that no proxy or browser buffers an endless
	// response.
	DefaultSockJSStreamLimit = 128 << 10
)

// xhrStreamingPrelude is written before the first frame of an xhr_streaming response: 2 KiB that make
// old browsers hand the response to the script as it arrives.
var xhrStreamingPrelude = append([]byte(strings.Repeat("h", 2048)), '\n')

// SockJSOptions configures a SockJSHandler. Zero fields take the defaults.
type SockJSOptions struct {
	// Options bounds each session: MaxQueuedBytes its outbound queue (counted as encoded), WriteTimeout
	// each write to a receiving request, MaxBatchBytes the messages written in one frame.
	Options
	// OriginPatterns are the browser origins allowed besides the request's own host, as for
	// WebSocketOptions. A request from another origin is answered 403, with no CORS headers.
	OriginPatterns []string
	// ReadLimit bounds one inbound message, in bytes after JSON decoding, and the unread inbound bytes
	// a session holds; an xhr_send body may be twice as large, for the JSON escaping. Zero means
	// DefaultReadLimit.
	ReadLimit int64
	// Heartbeat is DefaultSockJSHeartbeat when zero.
	Heartbeat time.Duration
	// DisconnectDelay is DefaultSockJSDisconnectDelay when zero.
	DisconnectDelay time.Duration
	// StreamLimit is DefaultSockJSStreamLimit when zero.
	StreamLimit int
	// Open decides on a request that would start a session, before anything is written to it (for
	// example authentication and connection limits). It returns false after writing its refusal. When
	// it returns true, start is called once with the session's Conn, from the request's goroutine; it
	// must not block, and it owns the Conn from then on (it must Close or Abort it). Required.
	Open func(w http.ResponseWriter, r *http.Request) (start func(Conn), ok bool)
}

func (o SockJSOptions) withDefaults() SockJSOptions {
	o.Options = o.Options.withDefaults()
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultSockJSHeartbeat
	}
	if o.DisconnectDelay <= 0 {
		o.DisconnectDelay = DefaultSockJSDisconnectDelay
	}
	if o.StreamLimit <= 0 {
		o.StreamLimit = DefaultSockJSStreamLimit
	}
	return o
}

// SockJSHandler serves the SockJS protocol (0.3) under one path prefix, with the websocket,
// xhr_streaming, xhr (polling) and eventsource transports; the iframe, htmlfile and JSONP transports
// are not served (404), and /info says cookie_needed:false. Each session is a Conn that carries text
// only (see ErrNotText). A session is bound to the IP address that opened it: requests naming it from
// another address are answered 404, as for an unknown session. Safe for concurrent use.
type SockJSHandler struct {
	prefix string
	opts   SockJSOptions

	mu       sync.Mutex
	sessions map[string]*sockjsConn // nil value: the session is being opened
}

// NewSockJSHandler returns a handler serving SockJS under prefix (for example "/stomp"; mount it at
// both prefix and prefix+"/").
func NewSockJSHandler(prefix string, opts SockJSOptions) *SockJSHandler {
	if opts.Open == nil {
		panic("transport: SockJSOptions.Open is required")
	}
	return &SockJSHandler{
		prefix:   strings.TrimSuffix(prefix, "/"),
		opts:     opts.withDefaults(),
		sessions: make(map[string]*sockjsConn),
	}
}

// Sessions reports the sessions the handler knows, including ended ones it still answers for.
func (h *SockJSHandler) Sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// ServeHTTP implements http.Handler.
func (h *SockJSHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !originAllowed(r, h.opts.OriginPatterns) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	switch rest {
	case "", "/":
		if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		_, _ = io.WriteString(w, "Welcome to SockJS!\n")
		return
	case "/info":
		h.serveInfo(w, r)
		return
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	if len(parts) != 3 || !validSockJSName(parts[0]) || !validSockJSName(parts[1]) {
		http.NotFound(w, r)
		return
	}
	id := parts[1]
	switch parts[2] {
	case "websocket":
		if allowMethods(w, r, http.MethodGet) {
			h.serveWebSocket(w, r, id)
		}
	case "xhr":
		h.serveXHR(w, r, id, false)
	case "xhr_streaming":
		h.serveXHR(w, r, id, true)
	case "xhr_send":
		h.serveXHRSend(w, r, id)
	case "eventsource":
		if allowMethods(w, r, http.MethodGet) {
			h.serveEventSource(w, r, id)
		}
	default:
		http.NotFound(w, r)
	}
}

// validSockJSName reports whether a server or session id path segment is acceptable: not empty and
// without a dot, as the protocol requires.
func validSockJSName(s string) bool { return s != "" && !strings.Contains(s, ".") }

// allowMethods answers 405 to a method outside allowed, and reports whether to go on.
func allowMethods(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for _, m := range allowed {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// setNoCache marks a response as never to be cached.
func setNoCache(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store, no-cache, no-transform, must-revalidate, max-age=0")
}

// setCORS answers the CORS headers for a request whose origin was allowed: the origin itself, with
// credentials, since sockjs-client sends its requests with credentials.
func setCORS(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		hdr.Set("Access-Control-Allow-Origin", "*")
	} else {
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Set("Access-Control-Allow-Credentials", "true")
	}
	hdr.Add("Vary", "Origin")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		hdr.Set("Access-Control-Allow-Headers", req)
	}
}

// preflight answers an OPTIONS request for an endpoint that takes methods.
func preflight(w http.ResponseWriter, r *http.Request, methods string) {
	setCORS(w, r)
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Methods", "OPTIONS, "+methods)
	hdr.Set("Access-Control-Max-Age", "31536000")
	hdr.Set("Cache-Control", "public, max-age=31536000")
	hdr.Set("Expires", time.Now().Add(365*24*time.Hour).UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusNoContent)
}

// postOrPreflight answers an OPTIONS preflight or a method other than POST for an endpoint clients POST
// to, and reports whether the request is a POST to serve.
func postOrPreflight(w http.ResponseWriter, r *http.Request) bool {
	switch r.Method {
	case http.MethodPost:
		return true
	case http.MethodOptions:
		preflight(w, r, "POST")
	default:
		allowMethods(w, r, http.MethodPost, http.MethodOptions)
	}
	return false
}

func (h *SockJSHandler) serveInfo(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodOptions:
		preflight(w, r, "GET")
		return
	case http.MethodGet:
	default:
		allowMethods(w, r, http.MethodGet, http.MethodOptions)
		return
	}
	setCORS(w, r)
	setNoCache(w)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = io.WriteString(w, `{"websocket":true,"cookie_needed":false,"origins":["*:*"],"entropy":`+
		strconv.FormatUint(uint64(rand.Uint32()), 10)+"}")
}

// session returns the session id names, opening it if it does not exist: it reports false when the
// request has been answered instead (the session belongs to another address, is being opened, or
// Open refused it). upgrade, when given, runs after Open admitted a new session and before it starts;
// when it fails, the session starts with its client already gone.
func (h *SockJSHandler) session(w http.ResponseWriter, r *http.Request, id string, upgrade func() bool) (*sockjsConn, bool) {
	h.mu.Lock()
	c, exists := h.sessions[id]
	if exists {
		h.mu.Unlock()
		if c == nil || c.clientIP != hostOf(r.RemoteAddr) {
			http.NotFound(w, r)
			return nil, false
		}
		return c, true
	}
	h.sessions[id] = nil // reserved while Open decides
	h.mu.Unlock()

	start, ok := h.opts.Open(w, r)
	if !ok {
		h.forget(id, nil)
		return nil, false
	}
	c = newSockJSConn(id, r.RemoteAddr, &h.opts, nil)
	c.forget = func() { h.forget(id, c) }
	h.mu.Lock()
	h.sessions[id] = c
	h.mu.Unlock()
	if upgrade != nil && !upgrade() {
		// The session starts with its client already gone, and ends as soon as it reads.
		c.mu.Lock()
		c.clientGoneLocked(nil)
		c.mu.Unlock()
	}
	start(c)
	return c, true
}

// forget removes id from the table if it still names c.
func (h *SockJSHandler) forget(id string, c *sockjsConn) {
	h.mu.Lock()
	if h.sessions[id] == c {
		delete(h.sessions, id)
	}
	h.mu.Unlock()
}

// lookup returns the existing session id names, for a request from r's address.
func (h *SockJSHandler) lookup(r *http.Request, id string) *sockjsConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.sessions[id]
	if c == nil || c.clientIP != hostOf(r.RemoteAddr) {
		return nil
	}
	return c
}

// serveXHR serves the xhr (polling) and xhr_streaming receiving transports.
func (h *SockJSHandler) serveXHR(w http.ResponseWriter, r *http.Request, id string, streaming bool) {
	if !postOrPreflight(w, r) {
		return
	}
	c, ok := h.session(w, r, id, nil)
	if !ok {
		return
	}
	setCORS(w, r)
	setNoCache(w)
	w.Header().Set("Content-Type", "application/javascript; charset=UTF-8")
	sw := &httpFrameWriter{w: w, rc: http.NewResponseController(w), suffix: "\n"}
	limit := 0
	if streaming {
		sw.prelude = xhrStreamingPrelude
		limit = h.opts.StreamLimit
	}
	c.receive(r.Context(), sw, limit)
}

// serveEventSource serves the eventsource receiving transport.
func (h *SockJSHandler) serveEventSource(w http.ResponseWriter, r *http.Request, id string) {
	c, ok := h.session(w, r, id, nil)
	if !ok {
		return
	}
	setCORS(w, r)
	setNoCache(w)
	w.Header().Set("Content-Type", "text/event-stream; charset=UTF-8")
	sw := &httpFrameWriter{w: w, rc: http.NewResponseController(w), prelude: []byte("\r\n"),
		prefix: "data: ", suffix: "\r\n\r\n"}
	c.receive(r.Context(), sw, h.opts.StreamLimit)
}

// serveXHRSend takes the messages a client sends, as a JSON array of strings, and answers 204 once
// they are queued for the session's reader (which may wait while the reader is behind). A body that is
// not such an array is answered 400, one over twice the read limit 413 (and the session fails as for
// an inbound message over the limit), an unknown session 404.
func (h *SockJSHandler) serveXHRSend(w http.ResponseWriter, r *http.Request, id string) {
	if !postOrPreflight(w, r) {
		return
	}
	c := h.lookup(r, id)
	if c == nil {
		http.NotFound(w, r)
		return
	}
	setCORS(w, r)
	setNoCache(w)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 2*h.opts.ReadLimit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.failInbound(errSockJSTooBig)
			http.Error(w, "message too big", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "could not read the body", http.StatusBadRequest)
		return
	}
	if status, msg := h.deliver(r.Context(), c, body); status != 0 {
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(http.StatusNoContent)
}

// errSockJSTooBig is the inbound failure of a session that was sent a message over the read limit.
var errSockJSTooBig = fmt.Errorf("transport: sockjs: %w", ErrMessageTooBig)

// deliver decodes a client's payload and queues its messages for the reader. It returns an HTTP
// status and message when it could not, 0 when it did.
func (h *SockJSHandler) deliver(ctx context.Context, c *sockjsConn, payload []byte) (int, string) {
	var msgs [][]byte
	tooBig := false
	err := decodeSockJSMessages(payload, func(m []byte) {
		if int64(len(m)) > h.opts.ReadLimit {
			tooBig = true
		}
		msgs = append(msgs, m)
	})
	switch {
	case err != nil:
		return http.StatusBadRequest, err.Error()
	case tooBig:
		c.failInbound(errSockJSTooBig)
		return http.StatusRequestEntityTooLarge, "message too big"
	}
	if err := c.push(ctx, msgs); err != nil {
		return http.StatusNotFound, "session closed"
	}
	return 0, ""
}

// serveWebSocket serves the websocket transport: one WebSocket carries the session both ways, SockJS
// frames as text messages. The session ends with it.
func (h *SockJSHandler) serveWebSocket(w http.ResponseWriter, r *http.Request, id string) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, `can "Upgrade" only to "WebSocket"`, http.StatusBadRequest)
		return
	}
	if c := h.lookup(r, id); c != nil {
		// A WebSocket session has its own id; answer like any other request for a known session.
		http.Error(w, "session already open", http.StatusConflict)
		return
	}
	var ws *websocket.Conn
	upgrade := func() bool {
		var err error
		ws, err = websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // origin checked above
		return err == nil
	}
	c, ok := h.session(w, r, id, upgrade)
	if !ok || ws == nil {
		return
	}
	ws.SetReadLimit(2 * h.opts.ReadLimit)
	ctx, cancel := context.WithCancel(context.Background())
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer cancel()
		h.readWebSocket(ctx, c, ws)
	}()
	c.receive(ctx, &wsFrameWriter{ws: ws}, 1<<62)
	// The receiver ends on the close frame, on the client going away, or on the session's end.
	closeCode, reason := websocket.StatusNormalClosure, ""
	c.mu.Lock()
	if !c.closeSent && c.inErr != nil && errors.Is(c.inErr, errSockJSTooBig) {
		closeCode, reason = websocket.StatusMessageTooBig, "message too big"
	}
	c.mu.Unlock()
	_ = ws.Close(closeCode, reason)
	cancel()
	<-readerDone
	c.mu.Lock()
	c.clientGoneLocked(nil)
	c.mu.Unlock()
}

// readWebSocket queues what the client sends on the session's WebSocket until it closes.
func (h *SockJSHandler) readWebSocket(ctx context.Context, c *sockjsConn, ws *websocket.Conn) {
	for {
		_, p, err := ws.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusMessageTooBig {
				c.failInbound(errSockJSTooBig)
			}
			c.mu.Lock()
			c.clientGoneLocked(nil)
			c.mu.Unlock()
			return
		}
		if len(trimJSONSpace(p)) == 0 {
			continue
		}
		if status, msg := h.deliver(ctx, c, p); status != 0 {
			if status == http.StatusBadRequest {
				_ = ws.Close(websocket.StatusUnsupportedData, msg)
			}
			c.mu.Lock()
			c.clientGoneLocked(nil)
			c.mu.Unlock()
			return
		}
	}
}

// httpFrameWriter writes SockJS frames on a streaming or polling HTTP response.
type httpFrameWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	prelude []byte // written before the first frame
	prefix  string // before each frame
	suffix  string // after each frame
	buf     []byte
}

func (hw *httpFrameWriter) writeFrame(frame []byte, deadline time.Time) error {
	_ = hw.rc.SetWriteDeadline(deadline)
	b := hw.buf[:0]
	if hw.prelude != nil {
		b = append(b, hw.prelude...)
		hw.prelude = nil
	}
	b = append(b, hw.prefix...)
	b = append(b, frame...)
	b = append(b, hw.suffix...)
	_, err := hw.w.Write(b)
	if err == nil {
		err = hw.rc.Flush()
	}
	if cap(b) <= 64<<10 {
		hw.buf = b[:0]
	}
	return err
}

// wsFrameWriter writes SockJS frames as WebSocket text messages.
type wsFrameWriter struct{ ws *websocket.Conn }

func (ww *wsFrameWriter) writeFrame(frame []byte, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return ww.ws.Write(ctx, websocket.MessageText, frame)
}

// hostOf returns the host part of a host:port address (the address itself when it has no port).
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
