package admin

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/stompd/stompd/stompws/auth"
	"github.com/stompd/stompd/stompws/frame"
	"github.com/stompd/stompd/stompws/stompwstest"
)

func TestMain(m *testing.M) { stompwstest.VerifyTestMain(m, func() {}, goleak.IgnoreCurrent()) }

// fixture is a running server and its management API.
type fixture struct {
	t   *testing.T
	srv *stompwstest.Server
	api *API
}

func newFixture(t *testing.T, authn *auth.Authenticator) *fixture {
	t.Helper()
	srv := stompwstest.Start(t, stompwstest.Config{})
	api := New(Config{Broker: srv.Broker, Server: srv.STOMP, Authenticator: authn, Node: "n1", Version: "test", Mode: "memory",
		Limits: frame.Limits{MaxFrameBytes: 1 << 20, MaxHeaders: 10, MaxHeaderBytes: 1024}})
	t.Cleanup(api.Close)
	return &fixture{t: t, srv: srv, api: api}
}

// call makes a request from remote (127.0.0.1 unless given), addressed to 127.0.0.1:8080 (or the
// header's Host), and decodes the JSON answer.
func (f *fixture) call(method, path, body string, header http.Header, remote string) (int, map[string]any, http.Header) {
	f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = "127.0.0.1:8080"
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	req.RemoteAddr = "127.0.0.1:40000"
	if remote != "" {
		req.RemoteAddr = remote
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		f.t.Fatalf("%s %s: %d, not JSON: %q", method, path, w.Code, w.Body.String())
	}
	return w.Code, out, w.Header()
}

// stompClient connects a raw STOMP client over TCP and returns it, with its frames' reader.
func (f *fixture) stompClient(name string) (net.Conn, *bufio.Reader) {
	f.t.Helper()
	c, err := net.Dial("tcp", f.srv.TCPAddr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	if _, err := c.Write([]byte("CONNECT\naccept-version:1.2\nname:" + name + "\n\n\x00")); err != nil {
		f.t.Fatal(err)
	}
	if _, err := r.ReadString(0); err != nil {
		f.t.Fatal(err)
	}
	return c, r
}

func TestOverviewConnectionsAndClose(t *testing.T) {
	f := newFixture(t, nil)
	c, r := f.stompClient("watcher")
	if _, err := c.Write([]byte("SUBSCRIBE\nid:1\ndestination:/topic/t\nreceipt:r\n\n\x00")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadString(0); err != nil {
		t.Fatal(err)
	}
	code, ov, _ := f.call("GET", "/api/overview", "", nil, "")
	if code != 200 || ov["node"] != "n1" || ov["subscriptions"].(float64) != 1 ||
		ov["connections"].(map[string]any)["by_transport"].(map[string]any)["tcp"].(float64) != 1 {
		t.Errorf("overview %d %v", code, ov)
	}
	code, list, _ := f.call("GET", "/api/connections?limit=10", "", nil, "")
	conns := list["connections"].([]any)
	if code != 200 || list["total"].(float64) != 1 || len(conns) != 1 {
		t.Fatalf("connections %d %v", code, list)
	}
	conn := conns[0].(map[string]any)
	session := conn["session"].(string)
	if subs := conn["subscriptions"].([]any); conn["name"] != "watcher" || len(subs) != 1 ||
		subs[0].(map[string]any)["destination"] == nil || subs[0].(map[string]any)["ack"] == nil {
		t.Errorf("connection %v", conn)
	}
	if code, one, _ := f.call("GET", "/api/connections/"+session, "", nil, ""); code != 200 || one["session"] != session {
		t.Errorf("one connection %d %v", code, one)
	}
	if code, _, _ := f.call("GET", "/api/connections?limit=5000", "", nil, ""); code != 400 {
		t.Errorf("limit 5000: %d", code)
	}
	if code, _, _ := f.call("DELETE", "/api/connections/nope", "", nil, ""); code != 404 {
		t.Errorf("closing an unknown session: %d", code)
	}
	if code, _, _ := f.call("DELETE", "/api/connections/"+session, "", nil, ""); code != 200 {
		t.Fatalf("close: %d", code)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	frame, _ := r.ReadString(0)
	if !strings.HasPrefix(frame, "ERROR") || !strings.Contains(frame, "message:closed by an operator") {
		t.Errorf("the client got %q", frame)
	}
}

func TestQueuesTopicsAndPublish(t *testing.T) {
	f := newFixture(t, nil)
	for _, body := range []string{`{"destination":"/queue/jobs","body":"one"}`, `{"destination":"/queue/jobs","body_base64":"AAEC"}`} {
		code, out, _ := f.call("POST", "/api/publish", body, nil, "")
		if code != 200 || out["routed"] != true || out["queued"] != true || out["message_id"] == "" {
			t.Errorf("publish %s: %d %v", body, code, out)
		}
	}
	if code, out, _ := f.call("POST", "/api/publish", `{"destination":"/topic/nobody","body":"x","headers":{"color":"blue"}}`, nil, ""); code != 200 || out["routed"] != false {
		t.Errorf("publish to nobody: %d %v", code, out)
	}
	code, q, _ := f.call("GET", "/api/queues/jobs", "", nil, "")
	if code != 200 || q["ready"].(float64) != 2 || q["destination"] != "/queue/jobs" {
		t.Errorf("queue %d %v", code, q)
	}
	if code, list, _ := f.call("GET", "/api/queues", "", nil, ""); code != 200 || len(list["queues"].([]any)) != 1 {
		t.Errorf("queues %d %v", code, list)
	}
	if code, out, _ := f.call("DELETE", "/api/queues/jobs/contents", "", nil, ""); code != 200 || out["purged"].(float64) != 2 {
		t.Errorf("purge %d %v", code, out)
	}
	if code, _, _ := f.call("DELETE", "/api/queues/jobs", "", nil, ""); code != 200 {
		t.Errorf("delete %d", code)
	}
	if code, _, _ := f.call("GET", "/api/queues/jobs", "", nil, ""); code != 404 {
		t.Errorf("deleted queue: %d", code)
	}
	if code, _, _ := f.call("GET", "/api/topics", "", nil, ""); code != 200 {
		t.Errorf("topics %d", code)
	}
	for body, want := range map[string]int{
		`{"destination":`:                                                                           400, // bad JSON
		`{"destination":"/nowhere/x","body":"x"}`:                                                   400,
		`{"destination":"/topic/x","body":"x","body_base64":"eA=="}`:                                400,
		`{"destination":"/topic/x","body":"x","headers":{"message-id":"forged"}}`:                   400,
		`{"destination":"/topic/x","body":"` + strings.Repeat("x", 2<<20) + `"}`:                    413,
		`{"destination":"/topic/x","extra":1}`:                                                      400,
		`{"destination":"/topic/x","body":"x"} and more`:                                            400,
		`{"destination":"/topic/x","body":"x","headers":{"":"v"}}`:                                  400,
		`{"destination":"/topic/x","body":"x","headers":{"a":"b\u0000c"}}`:                          400,
		`{"destination":"/topic/x","body":"x","headers":{"a":"` + strings.Repeat("v", 1030) + `"}}`: 400,
		`{"destination":"/topic/x","body":"x","headers":{` + manyHeaders(11) + `}}`:                 400,
		// Within the body limit alone, over the frame limit with its header.
		`{"destination":"/topic/x","body":"` + strings.Repeat("x", 1<<20-40) + `","headers":{"h":"` + strings.Repeat("v", 100) + `"}}`: 413,
		`{"destination":"/topic/x","body":"` + strings.Repeat("x", 3<<20) + `"}`:                                                       413, // past what is read at all
	} {
		if code, out, _ := f.call("POST", "/api/publish", body, nil, ""); code != want || out["error"] == "" {
			t.Errorf("publish %.60s: %d %v, want %d", body, code, out, want)
		}
	}
}

// manyHeaders returns n JSON members "hI":"v".
func manyHeaders(n int) string {
	members := make([]string, n)
	for i := range members {
		members[i] = fmt.Sprintf(`"h%d":"v"`, i)
	}
	return strings.Join(members, ",")
}

// TestQueueNamesInPaths: a queue's name is one path segment with its slashes escaped, so that no
// name is taken for another queue's /contents, and raw slashes still name one queue.
func TestQueueNamesInPaths(t *testing.T) {
	f := newFixture(t, nil)
	for _, dest := range []string{"/queue/jobs", "/queue/jobs/contents", "/queue/x/..", "/queue/a/b"} {
		if code, out, _ := f.call("POST", "/api/publish", `{"destination":"`+dest+`","body":"m"}`, nil, ""); code != 200 {
			t.Fatalf("publish to %s: %d %v", dest, code, out)
		}
	}
	ready := func(name string) float64 {
		t.Helper()
		code, q, _ := f.call("GET", "/api/queues/"+url.PathEscape(name), "", nil, "")
		if code != 200 {
			return -1
		}
		return q["ready"].(float64)
	}
	if code, out, _ := f.call("DELETE", "/api/queues/jobs%2Fcontents/contents", "", nil, ""); code != 200 || out["queue"] != "/queue/jobs/contents" {
		t.Errorf("purge of jobs/contents: %d %v", code, out)
	}
	if ready("jobs") != 1 || ready("jobs/contents") != 0 {
		t.Errorf("after purging jobs/contents: jobs %v, jobs/contents %v", ready("jobs"), ready("jobs/contents"))
	}
	if code, out, _ := f.call("DELETE", "/api/queues/x%2F..", "", nil, ""); code != 200 || out["deleted"] != "/queue/x/.." {
		t.Errorf("delete of x/..: %d %v", code, out)
	}
	if ready("jobs") != 1 {
		t.Errorf("deleting x/.. touched jobs: %v", ready("jobs"))
	}
	if ready("a/b") != 1 {
		t.Error("a name with raw slashes no longer names its queue")
	}
	// Paging past any end, and methods an endpoint does not take.
	if code, out, _ := f.call("GET", "/api/queues?offset=9223372036854775807", "", nil, ""); code != 200 || len(out["queues"].([]any)) != 0 {
		t.Errorf("the furthest offset: %d %v", code, out)
	}
	code, out, h := f.call("DELETE", "/api/overview", "", nil, "")
	if code != 405 || h.Get("Allow") != "GET" || out["error"] == "" {
		t.Errorf("DELETE /api/overview: %d %v %v", code, h, out)
	}
	if code, _, _ := f.call("GET", "/api/nothing", "", nil, ""); code != 404 {
		t.Errorf("no such endpoint: %d", code)
	}
}

func TestAccess(t *testing.T) {
	// Authentication off: loopback only; mutating calls from another origin refused; JSON only.
	f := newFixture(t, nil)
	if code, _, _ := f.call("GET", "/api/overview", "", nil, "10.1.2.3:5000"); code != 403 {
		t.Errorf("a remote client with authentication off: %d", code)
	}
	evil := http.Header{"Origin": {"https://evil.example"}}
	if code, _, _ := f.call("DELETE", "/api/queues/x", "", evil, ""); code != 403 {
		t.Errorf("a cross-origin DELETE: %d", code)
	}
	if code, _, _ := f.call("GET", "/api/overview", "", evil, ""); code != 403 {
		t.Errorf("a cross-origin GET with authentication off: %d", code)
	}
	// A DNS rebinding: a page of evil.example, its name now pointing at 127.0.0.1, calls with its
	// own Host and Origin.
	rebound := http.Header{"Host": {"evil.example:8080"}, "Origin": {"http://evil.example:8080"}}
	for _, method := range []string{"GET", "DELETE"} {
		if code, _, _ := f.call(method, "/api/queues/x", "", rebound, ""); code != 403 {
			t.Errorf("%s through a rebound host name: %d", method, code)
		}
	}
	for _, host := range []string{"localhost:8080", "127.0.0.1", "[::1]:8080", "LOCALHOST"} {
		if code, _, _ := f.call("GET", "/api/overview", "", http.Header{"Host": {host}, "Origin": {"http://" + host}}, ""); code != 200 {
			t.Errorf("addressed as %s: %d", host, code)
		}
	}
	req := httptest.NewRequest("POST", "/api/publish", strings.NewReader(`destination=/topic/x`))
	req.Host = "localhost:8080"
	req.RemoteAddr = "127.0.0.1:1"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, req)
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("a form POST: %d", w.Code)
	}

	// Authentication on: 401 with a challenge, 403 without the admin role, 200 with it, from anywhere.
	users := filepath.Join(t.TempDir(), "users")
	var lines []string
	for _, u := range []struct{ name, pass, roles string }{{"root", "rootpw", ":admin"}, {"bob", "bobpw", ""}} {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, u.name+":"+string(hash)+u.roles)
	}
	if err := os.WriteFile(users, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Config{UsersFile: users})
	if err != nil {
		t.Fatal(err)
	}
	g := newFixture(t, authn)
	basic := func(user, pass string) http.Header {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return http.Header{"Authorization": r.Header["Authorization"]}
	}
	code, _, h := g.call("GET", "/api/overview", "", nil, "10.1.2.3:5000")
	if code != 401 || !strings.Contains(strings.Join(h.Values("WWW-Authenticate"), ","), "Basic") {
		t.Errorf("no credentials: %d %v", code, h)
	}
	if code, _, _ := g.call("GET", "/api/overview", "", basic("bob", "bobpw"), "10.1.2.3:5000"); code != 403 {
		t.Errorf("a user without the admin role: %d", code)
	}
	if code, _, _ := g.call("GET", "/api/overview", "", basic("root", "wrong"), "10.1.2.3:5000"); code != 401 {
		t.Errorf("a wrong password: %d", code)
	}
	if code, _, _ := g.call("GET", "/api/overview", "", basic("root", "rootpw"), "10.1.2.3:5000"); code != 200 {
		t.Errorf("the admin: %d", code)
	}
}
