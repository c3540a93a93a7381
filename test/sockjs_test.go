package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws"
	"github.com/stompd/stompd/stompws/auth"
	"github.com/stompd/stompd/stompws/frame"
)

// sockjsTransports are the SockJS transports stompd serves, by sockjs-client's names.
var sockjsTransports = []string{"websocket", "xhr-streaming", "xhr-polling", "eventsource"}

// TestSockJSNode runs STOMP.js on sockjs-client 1.6.1 in Node with each transport forced
// (js/sockjs_scenario.js says what it does), against a server with heart-beats on.
func TestSockJSNode(t *testing.T) {
	requireJS(t, false)
	for _, tr := range sockjsTransports {
		t.Run(tr, func(t *testing.T) {
			ts := startServer(t, defaultHeartBeats)
			res := runNode(t, "sockjs_node.mjs", ts.HTTPURL+"/stomp", tr)
			if len(res.Passed) < 12 {
				t.Fatalf("only %d checks passed: %v", len(res.Passed), res.Passed)
			}
			if ready, unacked, _ := ts.Broker.QueueDepth("/queue/sockjs." + tr); ready != 0 || unacked != 0 {
				t.Errorf("the queue holds %d ready and %d unacked messages after the client acked them all", ready, unacked)
			}
			t.Logf("%s: %d checks passed: %s", tr, len(res.Passed), strings.Join(res.Passed, "; "))
		})
	}
}

// TestSockJSChromium runs the same scenario in headless Chromium with the sockjs-client browser bundle,
// on a page where WebSocket does not exist, once per HTTP transport; and lets sockjs-client choose.
func TestSockJSChromium(t *testing.T) {
	requireJS(t, true)
	ts := startServer(t, defaultHeartBeats, func(c *serverConfig) { c.routes["/sockjs-test/"] = sockjsTestPage() })
	res := runNode(t, "stompjs_browser.mjs", ts.HTTPURL+"/sockjs-test/")
	for _, tr := range []string{"xhr-streaming", "xhr-polling", "eventsource"} {
		if !containsString(res.Passed, tr+": DISCONNECT and SockJS close") {
			t.Errorf("the %s run did not finish: %v", tr, res.Passed)
		}
	}
	if !containsString(res.Passed, "chosen by sockjs-client without WebSocket: xhr-streaming") {
		t.Errorf("sockjs-client did not fall back to xhr-streaming: %v", res.Passed)
	}
	t.Logf("STOMP.js over SockJS in Chromium: %d checks passed: %s", len(res.Passed), strings.Join(res.Passed, "; "))
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// sockjsTestPage serves STOMP.js, the sockjs-client bundle and the SockJS scenario, and a page that
// removes WebSocket before sockjs-client loads, then runs the scenario on each HTTP transport.
func sockjsTestPage() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/sockjs-test/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><meta charset="utf-8"><title>stompd SockJS test</title>
<script>window.WebSocket = undefined; window.MozWebSocket = undefined;</script>
<script src="stomp.umd.min.js"></script><script src="sockjs.min.js"></script><script src="sockjs_scenario.js"></script>
<script>
(async () => {
  const url = location.origin + '/stomp';
  const passed = [];
  const info = await fetch(url + '/info').then((r) => r.json());
  const probe = new SockJS(url);
  await new Promise((resolve, reject) => { probe.onopen = resolve; probe.onclose = reject; });
  passed.push('chosen by sockjs-client without WebSocket: ' + probe.transport);
  probe.close();
  passed.push('info says websocket:' + info.websocket);
  for (const tr of ['xhr-streaming', 'xhr-polling', 'eventsource']) {
    const got = await runSockJSScenario(StompJs, SockJS, url, tr);
    for (const p of got) passed.push(tr + ': ' + p);
  }
  return passed;
})().then(
  (passed) => { window.stompResult = { ok: true, passed }; },
  (e) => { window.stompResult = { ok: false, error: String((e && e.message) || e) }; });
</script>`))
	})
	for name, path := range map[string]string{
		"stomp.umd.min.js":   "js/node_modules/@stomp/stompjs/bundles/stomp.umd.min.js",
		"sockjs.min.js":      "js/node_modules/sockjs-client/dist/sockjs.min.js",
		"sockjs_scenario.js": "js/sockjs_scenario.js",
	} {
		mux.HandleFunc("/sockjs-test/"+name, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, path) })
	}
	return mux
}

// rawSockJS opens a byte-level client on a SockJS session over the websocket transport: each send is
// one SockJS message, and the STOMP frames of the messages received are parsed as over WebSocket. A
// close frame c[code,"reason"] ends the stream, its code and reason kept as closeInfo reports them.
func (ts *testServer) rawSockJS(t testing.TB, query string, header http.Header) (*rawClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	url := "ws" + strings.TrimPrefix(ts.HTTPURL, "http") + "/stomp/000/" + rand.Text()[:12] + "/websocket" + query
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(64 << 20)
	rc := newRawClient(t)
	rc.write = func(p []byte, _ bool) error {
		msg, err := json.Marshal([]string{string(p)})
		if err != nil {
			return err
		}
		return c.Write(context.Background(), websocket.MessageText, msg)
	}
	rc.close = func() { c.CloseNow() }
	var pending []byte
	go rc.readLoop(func(buf []byte) (int, error) {
		for len(pending) == 0 {
			_, p, err := c.Read(context.Background())
			if err != nil {
				return 0, err
			}
			switch {
			case len(p) == 1 && (p[0] == 'o' || p[0] == 'h'):
			case p[0] == 'a':
				var msgs []string
				if err := json.Unmarshal(p[1:], &msgs); err != nil {
					return 0, fmt.Errorf("sockjs message frame %q: %w", p, err)
				}
				pending = []byte(strings.Join(msgs, ""))
			case p[0] == 'c':
				var cl []any
				if err := json.Unmarshal(p[1:], &cl); err != nil || len(cl) != 2 {
					return 0, fmt.Errorf("sockjs close frame %q: %v", p, err)
				}
				rc.mu.Lock()
				rc.closeCode, rc.closeText = websocket.StatusCode(cl[0].(float64)), cl[1].(string)
				rc.mu.Unlock()
				return 0, io.EOF
			default:
				return 0, fmt.Errorf("unknown sockjs frame %q", p)
			}
		}
		n := copy(buf, pending)
		pending = pending[n:]
		return n, nil
	})
	t.Cleanup(rc.close)
	return rc, resp, nil
}

// TestSockJSBinaryMessage: SockJS carries text only. A SockJS subscriber due a message whose body is
// not UTF-8 is told which message with an ERROR and disconnected; a queue message stays on its queue
// and reaches a WebSocket consumer intact. Text messages go on as before.
func TestSockJSBinaryMessage(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "test"})
	ts := startServer(t, func(c *serverConfig) { c.opts.Metrics = m })
	binary := []byte{0x00, 0x80, 0xff, 0xfe, 'x'}
	pub := ts.dialTCP(t)

	for _, dest := range []string{"/topic/sockjs.bin", "/queue/sockjs.bin"} {
		rc, _, err := ts.rawSockJS(t, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		rc.connect("1.2")
		rc.send("SUBSCRIBE\nid:1\ndestination:" + dest + "\nreceipt:r1\n\n\x00")
		rc.expect(frame.RECEIPT)
		if err := pub.Send(dest, "text/plain", []byte("text ✓"), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
		if f := rc.expect(frame.MESSAGE); string(f.Body) != "text ✓" {
			t.Fatalf("text message body %q", f.Body)
		}
		if err := pub.Send(dest, "application/octet-stream", binary, stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
		f := rc.expectError("message is not UTF-8 text, which SockJS cannot carry")
		if !strings.Contains(string(f.Body), dest) || !strings.Contains(string(f.Body), "message-id") {
			t.Errorf("ERROR body %q does not name the message", f.Body)
		}
		if code, _ := rc.closeInfo(); code != 1008 {
			t.Errorf("SockJS close code %d, want 1008", code)
		}
	}
	if ready, _, _ := ts.Broker.QueueDepth("/queue/sockjs.bin"); ready != 1 {
		t.Fatalf("queue holds %d ready messages, want the binary one back", ready)
	}
	ws := ts.rawWS(t, "v12.stomp")
	ws.connect("1.2")
	ws.send("SUBSCRIBE\nid:1\ndestination:/queue/sockjs.bin\n\n\x00")
	if got := ws.expect(frame.MESSAGE); !bytes.Equal(got.Body, binary) {
		t.Errorf("WebSocket consumer got %x, want %x", got.Body, binary)
	}
	if n := metricValue(t, reg, "stompd_errors_sent_total", "reason", "not_text"); n != 2 {
		t.Errorf("errors_sent{reason=not_text} = %v, want 2", n)
	}
}

// TestSockJSRules: SockJS follows /ws's rules: Origin allow-list (with CORS answers consistent with it),
// authentication at the first request, connection limits, metrics under transport="sockjs", and the
// shutdown ERROR.
func TestSockJSRules(t *testing.T) {
	fx := newAuthFixture(t, map[string]string{"alice": "wonderland"})
	reg := prometheus.NewRegistry()
	rules := []auth.Rule{{Users: []string{"alice"}, Publish: []string{"/topic/sockjs.#"}, Subscribe: []string{"/topic/sockjs.#"}}}
	ts := startServer(t, fx.serverConfig(t, rules, stompws.HandshakeAuthRequired), func(c *serverConfig) {
		c.opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: "test"})
		c.opts.OriginPatterns = []string{"https://app.example"}
		c.opts.MaxConnections = 2
	})
	post := func(path string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", ts.HTTPURL+"/stomp"+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wonderland"))
	if resp := post("/0/a/xhr", "Origin", "https://evil.example", "Authorization", basic); resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: %d, want 403", resp.StatusCode)
	}
	if resp := post("/0/b/xhr"); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no credentials: %d %v, want 401 with WWW-Authenticate", resp.StatusCode, resp.Header)
	}
	if resp := post("/0/c/xhr", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:queen"))); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", resp.StatusCode)
	}
	resp := post("/0/d/xhr", "Origin", "https://app.example", "Authorization", basic)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("allowed origin with credentials: %d, CORS %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}

	// A token in the URL, as sockjs-client keeps the query on every request; the session is alice's.
	rc, _, err := ts.rawSockJS(t, "?access_token="+fx.token(t, "alice", time.Hour, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	rc.connect("1.2")
	rc.subscribe("/topic/sockjs.auth")
	rc.send("SEND\ndestination:/topic/sockjs.auth\n\nhello from sockjs\x00")
	if f := rc.expect(frame.MESSAGE); string(f.Body) != "hello from sockjs" || f.Get("user-id") != "alice" {
		t.Errorf("message %s, want the body with user-id alice", f)
	}
	if n := metricValue(t, reg, "stompd_connections_current", "transport", "sockjs"); n != 2 {
		t.Errorf("connections_current{transport=sockjs} = %v, want 2 (the xhr session and this one)", n)
	}
	// Both connection slots are taken by SockJS sessions: a third is refused like an upgrade.
	if resp := post("/0/e/xhr", "Authorization", basic); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the connection limit: %d, want 503 with Retry-After", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { _ = ts.Server.Shutdown(ctx) }()
	rc.expectError("server shutting down")
	if code, _ := rc.closeInfo(); code != 1001 {
		t.Errorf("close code on shutdown %d, want 1001", code)
	}
	if resp := post("/0/f/xhr", "Authorization", basic); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("new session during shutdown: %d, want 503", resp.StatusCode)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("shutdown did not finish")
	}
}

// sockjsPoller is a SockJS client on the xhr-polling transport, driven by hand: it polls only when the
// test says so, as a browser on a stalled network would.
type sockjsPoller struct {
	t    *testing.T
	base string // .../stomp/000/SESSION
}

func newSockJSPoller(t *testing.T, ts *testServer) *sockjsPoller {
	p := &sockjsPoller{t: t, base: ts.HTTPURL + "/stomp/000/" + rand.Text()[:12]}
	if frames := p.poll(); len(frames) != 1 || frames[0] != "o" {
		t.Fatalf("open: %q", frames)
	}
	return p
}

func (p *sockjsPoller) post(path, body string) (int, string) {
	p.t.Helper()
	resp, err := http.Post(p.base+path, "text/plain", strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// send sends STOMP frames, one SockJS message each.
func (p *sockjsPoller) send(frames ...string) {
	p.t.Helper()
	body, _ := json.Marshal(frames)
	if status, msg := p.post("/xhr_send", string(body)); status != http.StatusNoContent {
		p.t.Fatalf("xhr_send: %d %s", status, msg)
	}
}

// poll makes one polling request and returns its SockJS frame.
func (p *sockjsPoller) poll() []string {
	p.t.Helper()
	status, body := p.post("/xhr", "")
	if status != http.StatusOK {
		p.t.Fatalf("poll: %d %s", status, body)
	}
	body = strings.TrimSuffix(body, "\n")
	if strings.HasPrefix(body, "a") {
		var msgs []string
		if err := json.Unmarshal([]byte(body[1:]), &msgs); err != nil {
			p.t.Fatalf("poll %q: %v", body, err)
		}
		return msgs
	}
	return []string{body}
}

// TestSockJSSlowConsumer: a SockJS client that stops polling is a slow consumer like any other: its
// session's outbound queue is bounded, a topic flood past it ends the session with ERROR "slow
// consumer", and when the client polls again it gets what was queued, the ERROR and the close frame.
func TestSockJSSlowConsumer(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := startServer(t, func(c *serverConfig) {
		c.opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: "test"})
		c.opts.MaxQueuedBytes = 64 << 10
	})
	p := newSockJSPoller(t, ts)
	p.send("CONNECT\naccept-version:1.2\nhost:/\n\n\x00", "SUBSCRIBE\nid:1\ndestination:/topic/sockjs.flood\nreceipt:r\n\n\x00")
	var got []string
	for !strings.Contains(strings.Join(got, ""), "RECEIPT") {
		got = append(got, p.poll()...)
	}
	pub := ts.dialTCP(t)
	body := []byte(strings.Repeat("f", 1024))
	for range 200 {
		if err := pub.Send("/topic/sockjs.flood", "text/plain", body); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Send("/topic/sockjs.flood", "text/plain", body, stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slow-consumer disconnect", func() bool {
		return metricValue(t, reg, "stompd_slow_consumer_disconnects_total") == 1
	})
	messages, errorFrame, closeFrame := 0, "", ""
	for closeFrame == "" {
		for _, f := range p.poll() {
			switch {
			case strings.HasPrefix(f, "MESSAGE"):
				messages++
			case strings.HasPrefix(f, "ERROR"):
				errorFrame = f
			case strings.HasPrefix(f, "c["):
				closeFrame = f
			}
		}
	}
	if !strings.Contains(errorFrame, "message:slow consumer") || closeFrame != `c[1013,"slow consumer"]` {
		t.Errorf("after %d messages: ERROR %q, close frame %q", messages, errorFrame, closeFrame)
	}
	if messages == 0 || messages >= 201 {
		t.Errorf("%d messages delivered before the disconnect, want some but not the whole flood", messages)
	}
	waitFor(t, "the session to be closed", func() bool {
		return metricValue(t, reg, "stompd_connections_closed_total", "transport", "sockjs", "reason", "slow_consumer") == 1
	})
}
