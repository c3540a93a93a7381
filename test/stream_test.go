package test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws/frame"
)

// streamPolicy makes /topic/log.# streams, kept within limits.
func streamPolicy(limits broker.StreamLimits) func(*serverConfig) {
	return func(c *serverConfig) {
		c.bopts.Policies = append(c.bopts.Policies, broker.DestinationPolicy{Pattern: "/topic/log.#", Stream: true, StreamLimits: limits})
	}
}

// expectOffsets reads n MESSAGE frames and checks their x-stream-offset headers are from, from+1, ...
// and their bodies "m<offset>".
func expectOffsets(t *testing.T, rc *rawClient, sub string, from, n int) {
	t.Helper()
	for i := range n {
		f := rc.expect(frame.MESSAGE)
		want := strconv.Itoa(from + i)
		if f.Get("subscription") != sub || f.Get("x-stream-offset") != want || string(f.Body) != "m"+want {
			t.Fatalf("subscription %s, message %d: got %s", sub, i, f)
		}
	}
}

// TestStreamReplay: messages of a stream destination carry x-stream-offset; a SUBSCRIBE with
// x-stream-offset reads the kept ones from there, then the live ones, with no gap and no duplicate,
// in memory and with a store, over TCP and WebSocket.
func TestStreamReplay(t *testing.T) {
	forQueueModes(t, func(t *testing.T, mode func(*serverConfig)) {
		ts := startServer(t, mode, streamPolicy(broker.StreamLimits{}))
		for _, tr := range []string{"tcp", "ws"} {
			t.Run(tr, func(t *testing.T) {
				dest := "/topic/log." + tr
				pub := ts.rawOver(t, tr)
				pub.connect("1.2")
				live := ts.rawOver(t, tr)
				live.connect("1.2")
				live.send("SUBSCRIBE\nid:live\ndestination:" + dest + "\n\n\x00")
				live.send("SUBSCRIBE\nid:sync\ndestination:/topic/sync\nreceipt:s\n\n\x00")
				live.expect(frame.RECEIPT)
				for i := 1; i <= 5; i++ {
					// A client's own x-stream-offset is not forwarded: the server numbers the messages.
					pub.send(fmt.Sprintf("SEND\ndestination:%s\nx-stream-offset:999\nreceipt:r%d\n\nm%d\x00", dest, i, i))
					pub.expect(frame.RECEIPT)
				}
				expectOffsets(t, live, "live", 1, 5)

				readers := ts.rawOver(t, tr)
				readers.connect("1.2")
				starts := []struct {
					header string
					from   int
				}{{"first", 1}, {"offset=3", 3}, {"offset=0", 1}, {"last", 5}, {"next", 6}, {"timestamp=0", 1}}
				for i, s := range starts {
					readers.send(fmt.Sprintf("SUBSCRIBE\nid:r%d\ndestination:%s\nx-stream-offset:%s\nreceipt:sub%d\n\n\x00", i, dest, s.header, i))
					// What it has kept, then the RECEIPT: Subscribe serves a reader before it returns.
					if s.from <= 5 {
						expectOffsets(t, readers, "r"+strconv.Itoa(i), s.from, 6-s.from)
					}
					readers.expect(frame.RECEIPT)
				}
				pub.send("SEND\ndestination:" + dest + "\n\nm6\x00")
				expectOffsets(t, live, "live", 6, 1)
				got := map[string]int{}
				for range starts {
					f := readers.expect(frame.MESSAGE)
					if f.Get("x-stream-offset") != "6" || string(f.Body) != "m6" {
						t.Fatalf("live message to a reader: %s", f)
					}
					got[f.Get("subscription")]++
				}
				if len(got) != len(starts) {
					t.Errorf("the live message reached readers %v, want each of %d once", got, len(starts))
				}
			})
		}
	})
}

// TestStreamErrors: a bad x-stream-offset, or one on a destination that is not a stream, is an ERROR
// that says why.
func TestStreamErrors(t *testing.T) {
	ts := startServer(t, streamPolicy(broker.StreamLimits{}))
	cases := []struct{ dest, offset, message, detail string }{
		{"/topic/log.a", "offset=-1", "invalid x-stream-offset header", "offset= takes a whole number"},
		{"/topic/log.a", "yesterday", "invalid x-stream-offset header", "want first, last, next, offset=N or timestamp=UNIX-SECONDS"},
		{"/topic/plain", "first", "not a stream", "has no stream policy"},
		{"/topic/log.*", "first", "not a stream", "is a pattern"},
		{"/queue/log.a", "first", "not a stream", "is not a topic"},
	}
	for _, c := range cases {
		rc := ts.rawOver(t, "tcp")
		rc.connect("1.2")
		rc.send("SUBSCRIBE\nid:1\ndestination:" + c.dest + "\nx-stream-offset:" + c.offset + "\n\n\x00")
		f := rc.expectError(c.message)
		if !strings.Contains(string(f.Body), c.detail) {
			t.Errorf("%s x-stream-offset:%s: ERROR body %q, want it to say %q", c.dest, c.offset, f.Body, c.detail)
		}
		rc.expectClosed()
	}
}

// TestStreamPacedNotEvicted: a reader that replays more than its connection can hold is paced by its
// room, like a queue consumer: it is not cut off as a slow consumer, and gets every message in order.
func TestStreamPacedNotEvicted(t *testing.T) {
	forQueueModes(t, func(t *testing.T, mode func(*serverConfig)) {
		ts := startServer(t, mode, streamPolicy(broker.StreamLimits{}), func(c *serverConfig) { c.opts.MaxQueuedBytes = 64 << 10 })
		const total = 3000 // 3000 × 1 KiB: about 50 times what the connection may queue
		body := strings.Repeat("x", 1024)
		for i := 1; i <= total; i++ {
			m := &broker.Message{Destination: "/topic/log.paced", Body: []byte(body)}
			if err := ts.Broker.PublishNoWait(m, func(err error) { t.Errorf("publish %d: %v", i, err) }); err != nil {
				t.Fatal(err)
			}
		}
		rc := ts.rawOver(t, "tcp")
		rc.connect("1.2")
		rc.pause()
		rc.send("SUBSCRIBE\nid:1\ndestination:/topic/log.paced\nx-stream-offset:first\n\n\x00")
		time.Sleep(200 * time.Millisecond) // the connection fills up while the client reads nothing
		rc.resume()
		for i := 1; i <= total; i++ {
			f := rc.expect(frame.MESSAGE)
			if f.Get("x-stream-offset") != strconv.Itoa(i) {
				t.Fatalf("message %d has offset %s", i, f.Get("x-stream-offset"))
			}
		}
	})
}

// TestStreamGoStomp reads a stream with go-stomp, client-individual acks and a prefetch window: the
// window paces the replay and every ACK lets the next message through.
func TestStreamGoStomp(t *testing.T) {
	transportsWith(t, streamPolicy(broker.StreamLimits{}), func(t *testing.T, dial func(testing.TB, ...func(*stomp.Conn) error) *stomp.Conn, ts *testServer) {
		conn := dial(t)
		for i := 1; i <= 50; i++ {
			if err := conn.Send("/topic/log.gostomp", "text/plain", []byte("m"+strconv.Itoa(i)), stomp.SendOpt.Receipt); err != nil {
				t.Fatal(err)
			}
		}
		sub, err := conn.Subscribe("/topic/log.gostomp", stomp.AckClientIndividual,
			stomp.SubscribeOpt.Header("x-stream-offset", "offset=11"), stomp.SubscribeOpt.Header("prefetch-count", "4"))
		if err != nil {
			t.Fatal(err)
		}
		for i := 11; i <= 50; i++ {
			m := recv(t, sub)
			if got := m.Header.Get("x-stream-offset"); got != strconv.Itoa(i) || string(m.Body) != "m"+got {
				t.Fatalf("want offset %d, got %s %q", i, got, m.Body)
			}
			if err := conn.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
		noMessage(t, sub, 100*time.Millisecond)
	})
}

// TestStreamSurvivesKill runs the binary with -data-dir and a stream policy, kills it with SIGKILL and
// starts it again: every message whose SEND got a RECEIPT is read back at its offset, and numbering
// goes on after the last one.
func TestStreamSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(t.TempDir(), "stompd.yaml")
	if err := os.WriteFile(config, []byte("policies:\n  - pattern: /topic/log.#\n    stream: true\n    max-age: 24h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-data-dir", dir, "-config", config)
	ts := p.clients(stompAddr)
	pub := ts.rawOver(t, "tcp")
	pub.connect("1.2")
	for i := 1; i <= 40; i++ {
		receipt := ""
		if i%10 == 0 {
			receipt = "receipt:r\n"
		}
		pub.send(fmt.Sprintf("SEND\ndestination:/topic/log.kill\n%s\nm%d\x00", receipt, i))
		if receipt != "" {
			pub.expect(frame.RECEIPT)
		}
	}
	p.kill()
	p.start()
	ts = p.clients(stompAddr)
	rc := ts.rawOver(t, "ws")
	rc.connect("1.2")
	rc.send("SUBSCRIBE\nid:a\ndestination:/topic/log.kill\nx-stream-offset:first\n\n\x00")
	expectOffsets(t, rc, "a", 1, 40)
	pub = ts.rawOver(t, "tcp")
	pub.connect("1.2")
	pub.send("SEND\ndestination:/topic/log.kill\nreceipt:r\n\nm41\x00")
	pub.expect(frame.RECEIPT)
	expectOffsets(t, rc, "a", 41, 1)
	rc.send("SUBSCRIBE\nid:b\ndestination:/topic/log.kill\nx-stream-offset:offset=39\n\n\x00")
	expectOffsets(t, rc, "b", 39, 3)
	for series, want := range map[string]float64{
		`stompd_store_messages{kind="stream"}`: 41,
		`stompd_streams_current`:               1,
		`stompd_store_messages{kind="queue"}`:  0,
	} {
		if got := scrapeValue(t, p.URL()+"/metrics", series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// TestStreamResumeChromium: a page on STOMP.js in headless Chromium reads a stream while it is being
// published to, reloads itself three times mid-stream, and each time resumes from the offset after the
// last one it got (kept in localStorage): across the reloads it sees every message once, in order.
func TestStreamResumeChromium(t *testing.T) {
	requireJS(t, true)
	forQueueModes(t, func(t *testing.T, mode func(*serverConfig)) {
		const total = 400
		ts := startServer(t, mode, streamPolicy(broker.StreamLimits{}), func(c *serverConfig) {
			c.routes["/stream-test/"] = streamTestPage(total)
		})
		var wg sync.WaitGroup
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop); wg.Wait() })
		wg.Go(func() {
			for i := 1; i <= total; i++ {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				if err := ts.Broker.Publish(&broker.Message{Destination: "/topic/log.browser", Body: []byte("m" + strconv.Itoa(i))}); err != nil {
					t.Errorf("publish %d: %v", i, err)
					return
				}
			}
		})
		res := runNode(t, "stompjs_browser.mjs", ts.HTTPURL+"/stream-test/")
		t.Logf("Chromium, %d messages across reloads: %s", total, strings.Join(res.Passed, "; "))
	})
}

// streamTestPage serves STOMP.js and a page that reads /topic/log.browser from the offset after the
// last one it recorded in localStorage (from the first message the first time), checks every offset
// is the one after the previous, and reloads itself after 60 messages, three times, before reading
// the rest up to total.
func streamTestPage(total int) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/stream-test/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><title>stompd stream resume test</title>
<script src="stomp.umd.min.js"></script>
<script>
const total = %d;
const got = JSON.parse(localStorage.getItem('got') || '[]');
const reloads = Number(localStorage.getItem('reloads') || '0');
const last = got.length ? got[got.length - 1] : 0;
let thisLoad = 0, leaving = false;
const client = new StompJs.Client({
  brokerURL: location.origin.replace(/^http/, 'ws') + '/ws',
  reconnectDelay: 0, heartbeatIncoming: 0, heartbeatOutgoing: 0,
});
function finish(result) { leaving = true; window.stompResult = result; client.deactivate(); }
client.onConnect = () => {
  client.subscribe('/topic/log.browser', (m) => {
    if (leaving) return;
    const offset = Number(m.headers['x-stream-offset']);
    const prev = got.length ? got[got.length - 1] : 0;
    if (offset !== prev + 1 || m.body !== 'm' + offset) {
      finish({ ok: false, error: 'after offset ' + prev + ' came offset ' + offset + ' body ' + m.body + ' (reload ' + reloads + ')' });
      return;
    }
    got.push(offset);
    localStorage.setItem('got', JSON.stringify(got));
    thisLoad++;
    if (got.length >= total) {
      finish({ ok: true, passed: ['offsets 1..' + total + ' in order, once each', 'reloads: ' + reloads] });
    } else if (reloads < 3 && thisLoad >= 60) {
      leaving = true;
      localStorage.setItem('reloads', String(reloads + 1));
      client.deactivate().then(() => location.reload());
    }
  }, { 'x-stream-offset': last ? 'offset=' + (last + 1) : 'first' });
};
client.onStompError = (f) => finish({ ok: false, error: 'ERROR ' + f.headers.message });
client.activate();
</script>`, total)
	})
	mux.HandleFunc("/stream-test/stomp.umd.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "js/node_modules/@stomp/stompjs/bundles/stomp.umd.min.js")
	})
	return mux
}
