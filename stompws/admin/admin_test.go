package admin

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/stompd/stompd/stompws/auth"
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
	api := New(Config{Broker: srv.Broker, Server: srv.STOMP, Authenticator: authn, Node: "n1", Version: "test", Mode: "memory"})
	t.Cleanup(api.Close)
	return &fixture{t: t, srv: srv, api: api}
}

// call makes a request from remote (127.0.0.1 unless given) and decodes the JSON answer.
func (f *fixture) call(method, path, body string, header http.Header, remote string) (int, map[string]any, http.Header) {
	f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
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
		`{"destination":`:                                                         400, // bad JSON
		`{"destination":"/nowhere/x","body":"x"}`:                                 400,
		`{"destination":"/topic/x","body":"x","body_base64":"eA=="}`:              400,
		`{"destination":"/topic/x","body":"x","headers":{"message-id":"forged"}}`: 400,
		`{"destination":"/topic/x","body":"` + strings.Repeat("x", 2<<20) + `"}`:  413,
		`{"destination":"/topic/x","extra":1}`:                                    400,
	} {
		if code, out, _ := f.call("POST", "/api/publish", body, nil, ""); code != want || out["error"] == "" {
			t.Errorf("publish %.60s: %d %v, want %d", body, code, out, want)
		}
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
	if code, _, _ := f.call("GET", "/api/overview", "", evil, ""); code != 200 {
		t.Errorf("a cross-origin GET: %d", code)
	}
	req := httptest.NewRequest("POST", "/api/publish", strings.NewReader(`destination=/topic/x`))
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
