package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/golang-jwt/jwt/v5"
)

// apiCall makes a management API request to the binary and decodes its JSON answer.
func apiCall(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s %s: %d %q", method, url, resp.StatusCode, data)
	}
	return resp.StatusCode, out
}

// TestManagementAPI: the binary's /api/ with a go-stomp client: the connection appears, a message
// published over HTTP reaches it with its headers, and closing the connection from the API ends it.
func TestManagementAPI(t *testing.T) {
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr)
	conn := p.clients(stompAddr).dialTCP(t, stomp.ConnOpt.Login("", ""))
	sub, err := conn.Subscribe("/topic/ops", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	var session string
	waitFor(t, "the subscription in the API", func() bool {
		_, list := apiCall(t, "GET", p.URL()+"/api/connections", "")
		for _, c := range list["connections"].([]any) {
			c := c.(map[string]any)
			if len(c["subscriptions"].([]any)) == 1 {
				session = c["session"].(string)
				return true
			}
		}
		return false
	})
	code, out := apiCall(t, "POST", p.URL()+"/api/publish", `{"destination":"/topic/ops","body":"from HTTP","headers":{"color":"blue"}}`)
	if code != 200 || out["routed"] != true {
		t.Fatalf("publish: %d %v", code, out)
	}
	m := recv(t, sub)
	if string(m.Body) != "from HTTP" || m.Header.Get("color") != "blue" {
		t.Errorf("go-stomp got %q %v", m.Body, m.Header)
	}
	if code, _ := apiCall(t, "DELETE", p.URL()+"/api/connections/"+session, ""); code != 200 {
		t.Fatalf("close: %d", code)
	}
	waitFor(t, "the connection gone", func() bool {
		_, ov := apiCall(t, "GET", p.URL()+"/api/overview", "")
		return ov["connections"].(map[string]any)["total"].(float64) == 0
	})
	if code, out := apiCall(t, "GET", p.URL()+"/api/nodes", ""); code != 200 || len(out["nodes"].([]any)) != 1 {
		t.Errorf("nodes %d %v", code, out)
	}
}

// TestManagementAPIWithStompJS: a STOMP.js client in Node finds itself in the API, gets a message
// published through it, and is closed by it.
func TestManagementAPIWithStompJS(t *testing.T) {
	requireJS(t, false)
	p := startStompd(t, "-stocks=false", "-chat=false")
	res := runNode(t, "admin_node.mjs", "ws://"+p.HTTPAddr+"/ws", p.URL())
	t.Logf("%s", strings.Join(res.Passed, "; "))
}

// TestConsole drives the console page in Chromium against a busy broker: tiles, moving charts,
// closing a connection and purging a queue from their rows.
func TestConsole(t *testing.T) {
	requireJS(t, true)
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr)
	ts := p.clients(stompAddr)
	for range 3 { // subscribers that keep reading, so the load is delivered and nothing backs up
		sub, err := ts.dialTCP(t).Subscribe("/topic/console", stomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for range sub.C { // closed when the connection is disconnected at the end of the test
			}
		}()
	}
	target := ts.rawOver(t, "tcp")
	target.connect("1.2", "name:to-close")
	pub := ts.dialTCP(t)
	for range 10 {
		if err := pub.Send("/queue/console", "text/plain", []byte("job"), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	for range 48 { // idle connections, so that the connection table has a second page (53 in all)
		ts.rawOver(t, "tcp").connect("1.2")
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // load for the charts, bounded by the test
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond) // about 1,000 messages a second, for at most 2 minutes
		defer tick.Stop()
		for range 12000 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range 10 {
				if pub.Send("/topic/console", "text/plain", []byte("tick")) != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()
	res := runPages(t, "console", p.URL(), nil)
	t.Logf("%s", strings.Join(res.Passed, "; "))
	if f := target.expect("ERROR"); f.Get("message") != "closed by an operator" {
		t.Errorf("the connection closed from the console got %s", f)
	}
}

// TestConsoleAccess: /admin follows the API's access rules on the binary: with a users file, a
// browser without credentials gets the Basic challenge, a user without the admin role 403, an admin
// the page; -admin=false takes page and API away; with -metrics-addr the console moves there with
// the static files it needs.
func TestConsoleAccess(t *testing.T) {
	fx := newAuthFixture(t, map[string]string{"root": "rootpw:admin", "bob": "bobpw"})
	get := func(url, user, password string) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(body)
	}
	p := startStompd(t, "-stocks=false", "-chat=false", "-users", fx.usersFile, "-auth-failure-delay", "0")
	if code, h, _ := get(p.URL()+"/admin", "", ""); code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("/admin without credentials: %d %q, want 401 with a Basic challenge", code, h.Get("WWW-Authenticate"))
	}
	if code, _, _ := get(p.URL()+"/admin", "bob", "bobpw"); code != http.StatusForbidden {
		t.Errorf("/admin as a user without the admin role: %d, want 403", code)
	}
	if code, h, body := get(p.URL()+"/admin", "root", "rootpw"); code != http.StatusOK ||
		!strings.Contains(body, "/static/js/admin.js") || h.Get("Content-Security-Policy") == "" {
		t.Errorf("/admin as admin: %d, CSP %q, body %.200q", code, h.Get("Content-Security-Policy"), body)
	}
	if _, _, home := get(p.URL()+"/", "", ""); !strings.Contains(home, `href="/admin"`) {
		t.Error("the home page does not link the console")
	}

	// With tokens only, a browser's Basic prompt takes the token as the password.
	tokens := startStompd(t, "-stocks=false", "-chat=false", "-jwt-secret", string(fx.secret), "-auth-failure-delay", "0")
	adminToken := fx.token(t, "ops", time.Hour, jwt.MapClaims{"roles": []string{"admin"}})
	if code, _, _ := get(tokens.URL()+"/admin", "ops", adminToken); code != http.StatusOK {
		t.Errorf("/admin with an admin token as the Basic password: %d, want 200", code)
	}
	if code, _, _ := get(tokens.URL()+"/admin", "ops", fx.token(t, "ops", time.Hour, nil)); code != http.StatusForbidden {
		t.Errorf("/admin with a token without the admin role: %d, want 403", code)
	}

	off := startStompd(t, "-stocks=false", "-chat=false", "-admin=false")
	for _, path := range []string{"/admin", "/api/overview"} {
		if code, _, _ := get(off.URL()+path, "", ""); code != http.StatusNotFound {
			t.Errorf("-admin=false: %s answers %d, want 404", path, code)
		}
	}

	metricsAddr := freeLoopbackAddr(t)
	split := startStompd(t, "-stocks=false", "-chat=false", "-metrics-addr", metricsAddr)
	for _, path := range []string{"/admin", "/static/js/admin.js", "/static/css/stompd.css", "/api/overview"} {
		if code, _, _ := get("http://"+metricsAddr+path, "", ""); code != http.StatusOK {
			t.Errorf("-metrics-addr: %s there answers %d, want 200", path, code)
		}
	}
	for _, path := range []string{"/admin", "/api/overview"} {
		if code, _, _ := get(split.URL()+path, "", ""); code != http.StatusNotFound {
			t.Errorf("-metrics-addr: %s is still on the HTTP listener (%d)", path, code)
		}
	}
}
