package test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/broker/chat"
	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws"
	"github.com/stompd/stompd/stompws/auth"
)

// authFixture is a users file, an HS256 secret and the rules of one test server.
type authFixture struct {
	usersFile string
	secret    []byte
}

func newAuthFixture(t *testing.T, users map[string]string) *authFixture {
	t.Helper()
	// A printable secret, so that it can also be given to the binary as -jwt-secret.
	f := &authFixture{usersFile: filepath.Join(t.TempDir(), "users"), secret: []byte(rand.Text() + rand.Text())}
	f.writeUsers(t, users)
	return f
}

// writeUsers writes the users file; each value is "password" or "password:role,role".
func (f *authFixture) writeUsers(t *testing.T, users map[string]string) {
	t.Helper()
	var b strings.Builder
	for name, spec := range users {
		password, roles, _ := strings.Cut(spec, ":")
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s", name, hash)
		if roles != "" {
			b.WriteString(":" + roles)
		}
		b.WriteString("\n")
	}
	// Written beside and renamed, as an operator's tools do, so a reload never sees half a file.
	tmp := f.usersFile + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.usersFile); err != nil {
		t.Fatal(err)
	}
}

// token signs an HS256 token for user with claims on top of sub and exp.
func (f *authFixture) token(t *testing.T, user string, ttl time.Duration, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": user, "exp": time.Now().Add(ttl).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(f.secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serverConfig returns a server option that turns authentication on with the fixture's users and key,
// the rules given (nil: the default rules), and a short failure delay.
func (f *authFixture) serverConfig(t *testing.T, rules []auth.Rule, mode stompws.HandshakeAuth) func(*serverConfig) {
	t.Helper()
	a, err := auth.New(auth.Config{UsersFile: f.usersFile, JWT: auth.JWTConfig{Secret: f.secret}})
	if err != nil {
		t.Fatal(err)
	}
	var policy *auth.Policy
	if rules != nil {
		if policy, err = auth.NewPolicy(rules); err != nil {
			t.Fatal(err)
		}
	}
	return func(c *serverConfig) {
		c.opts.Authenticator, c.opts.Policy, c.opts.HandshakeAuth = a, policy, mode
		c.opts.AuthFailureDelay = 300 * time.Millisecond
	}
}

// opsRules are the default rules plus queues for the ops role.
var opsRules = append(auth.DefaultRules(), auth.Rule{Roles: []string{"ops"}, Publish: []string{"/queue/#"}, Subscribe: []string{"/queue/#"}})

func TestAuthPasscode(t *testing.T) {
	fx := newAuthFixture(t, map[string]string{"alice": "wonderland", "bob": "builder:ops"})
	reg := prometheus.NewRegistry()
	ts := startServer(t, fx.serverConfig(t, opsRules, stompws.HandshakeAuthOptional), func(c *serverConfig) {
		c.opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: "test"})
	})
	for _, tr := range []string{"tcp", "ws"} {
		t.Run(tr, func(t *testing.T) {
			raw := func() *rawClient {
				if tr == "ws" {
					return ts.rawWS(t, "v12.stomp")
				}
				return ts.rawTCP(t)
			}
			// Wrong password, unknown user, no credentials: the same answer, after the delay.
			for _, creds := range [][]string{
				{"login:alice", "passcode:queen"}, {"login:mallory", "passcode:wonderland"}, nil,
			} {
				rc := raw()
				start := time.Now()
				rc.send("CONNECT\naccept-version:1.2\nhost:/\n" + strings.Join(append(creds, ""), "\n") + "\n\x00")
				e := rc.expectError("authentication failed")
				if strings.Contains(e.String(), "wonderland") || strings.Contains(e.String(), "queen") {
					t.Fatalf("ERROR echoes the credentials: %s", e)
				}
				if waited := time.Since(start); waited < 300*time.Millisecond {
					t.Fatalf("refused after %v, before the 300ms failure delay", waited)
				}
			}

			rc := raw()
			rc.connect("1.2", "login:alice", "passcode:wonderland")
			rc.send("SUBSCRIBE\nid:chat\ndestination:/topic/chat\nreceipt:s\n\n\x00")
			rc.expect("RECEIPT")
			rc.send("SEND\ndestination:/topic/stocks.AAPL\n\n1.00\x00")
			e := rc.expectError("access denied")
			if !strings.Contains(string(e.Body), "/topic/stocks.AAPL") || !strings.Contains(string(e.Body), "alice") {
				t.Fatalf("access denied does not name the destination and user: %q", e.Body)
			}

			rc = raw()
			rc.connect("1.2", "login:alice", "passcode:wonderland")
			rc.send("SUBSCRIBE\nid:q\ndestination:/queue/jobs\n\n\x00")
			if e := rc.expectError("access denied"); !strings.Contains(string(e.Body), "SUBSCRIBE to /queue/jobs") {
				t.Fatalf("access denied body %q", e.Body)
			}
		})
	}
	if got := metricValue(t, reg, "stompd_errors_sent_total", "reason", "access_denied"); got != 4 {
		t.Errorf("errors_sent{reason=access_denied} = %v, want 4", got)
	}
	if got := metricValue(t, reg, "stompd_auth_attempts_total", "method", "passcode", "result", "failure"); got != 4 {
		t.Errorf("auth_attempts{method=passcode,result=failure} = %v, want 4", got)
	}
	if got := metricValue(t, reg, "stompd_auth_attempts_total", "method", "none", "result", "failure"); got != 2 {
		t.Errorf("auth_attempts{method=none,result=failure} = %v, want 2", got)
	}
}

// TestAuthUserIDIsStamped: a role grants queues; every message carries its sender's user-id, which a
// client cannot forge, and go-stomp logs in with login/passcode.
func TestAuthUserIDIsStamped(t *testing.T) {
	fx := newAuthFixture(t, map[string]string{"bob": "builder:ops"})
	ts := startServer(t, fx.serverConfig(t, opsRules, stompws.HandshakeAuthOptional))
	for _, dial := range []func(testing.TB, ...func(*stomp.Conn) error) *stomp.Conn{ts.dialTCP, ts.dialWS} {
		c := dial(t, stomp.ConnOpt.Login("bob", "builder"))
		sub, err := c.Subscribe("/queue/jobs", stomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send("/queue/jobs", "text/plain", []byte("job"), stomp.SendOpt.Receipt, stomp.SendOpt.Header("user-id", "mallory")); err != nil {
			t.Fatal(err)
		}
		m := recv(t, sub)
		if got := m.Header.GetAll("user-id"); len(got) != 1 || got[0] != "bob" {
			t.Fatalf("user-id headers %q, want just bob", got)
		}
		_ = c.Disconnect() // the next transport's consumer must be the queue's only one
	}
}

func TestAuthChatShowsTheUser(t *testing.T) {
	fx := newAuthFixture(t, map[string]string{"alice": "wonderland"})
	ts := startServer(t, fx.serverConfig(t, nil, stompws.HandshakeAuthOptional), func(c *serverConfig) {
		c.onStart = append(c.onStart, func(b *broker.Broker) {
			room := chat.New(b, chat.Options{})
			t.Cleanup(room.Close)
		})
	})
	rc := ts.rawTCP(t)
	rc.connect("1.2", "login:alice", "passcode:wonderland", "name:The Queen")
	rc.send("SUBSCRIBE\nid:chat\ndestination:/topic/chat\n\n\x00")
	rc.send("SEND\ndestination:/app/chat\ncontent-type:text/plain\n\nhello\x00")
	for {
		m := rc.expect("MESSAGE")
		var ev struct{ Type, Name, Text string }
		if err := json.Unmarshal(m.Body, &ev); err != nil {
			t.Fatalf("chat event %q: %v", m.Body, err)
		}
		if ev.Type != "message" {
			continue // join, members
		}
		if ev.Name != "alice" || ev.Text != "hello" {
			t.Fatalf("chat shows %q saying %q, want alice saying hello", ev.Name, ev.Text)
		}
		return
	}
}

func TestAuthUsersFileReload(t *testing.T) {
	fx := newAuthFixture(t, map[string]string{"alice": "old"})
	ts := startServer(t, fx.serverConfig(t, nil, stompws.HandshakeAuthOptional), func(c *serverConfig) {
		c.opts.AuthFailureDelay = -1
	})
	ts.rawTCP(t).connect("1.2", "login:alice", "passcode:old")
	fx.writeUsers(t, map[string]string{"alice": "new"})
	waitFor(t, "the new password to work", func() bool {
		rc := ts.rawTCP(t)
		rc.send("CONNECT\naccept-version:1.2\nhost:/\nlogin:alice\npasscode:new\n\n\x00")
		ok := rc.next().Command == "CONNECTED"
		rc.close()
		return ok
	})
	rc := ts.rawTCP(t)
	rc.send("CONNECT\naccept-version:1.2\nhost:/\nlogin:alice\npasscode:old\n\n\x00")
	rc.expectError("authentication failed")
}

func TestAuthJWT(t *testing.T) {
	fx := newAuthFixture(t, nil)
	reg := prometheus.NewRegistry()
	ts := startServer(t, fx.serverConfig(t, opsRules, stompws.HandshakeAuthOptional), func(c *serverConfig) {
		c.opts.Metrics = metrics.New(reg, metrics.BuildInfo{Version: "test"})
	})
	good := fx.token(t, "carol", time.Hour, jwt.MapClaims{"roles": []string{"ops"}})

	t.Run("passcode", func(t *testing.T) {
		c := ts.dialWS(t, stomp.ConnOpt.Login("", good))
		roundTripAs(t, c, "/queue/jwt.passcode", "carol")
	})
	t.Run("connect header", func(t *testing.T) {
		rc := ts.rawTCP(t)
		rc.connect("1.2", "Authorization:Bearer "+good)
		rc.send("SUBSCRIBE\nid:1\ndestination:/queue/jwt.header\nreceipt:s\n\n\x00")
		rc.expect("RECEIPT")
	})
	t.Run("handshake header", func(t *testing.T) {
		rc, _, err := ts.rawWSWith(t, ts.WSURL, http.Header{"Authorization": {"Bearer " + good}}, "v12.stomp")
		if err != nil {
			t.Fatal(err)
		}
		rc.connect("1.2") // no credentials in CONNECT: the handshake's stand
		rc.send("SUBSCRIBE\nid:1\ndestination:/queue/jwt.handshake\nreceipt:s\n\n\x00")
		rc.expect("RECEIPT")
	})
	t.Run("access_token query", func(t *testing.T) {
		rc, _, err := ts.rawWSWith(t, ts.WSURL+"?access_token="+url.QueryEscape(good), nil, "v12.stomp")
		if err != nil {
			t.Fatal(err)
		}
		rc.connect("1.2")
		rc.send("SEND\ndestination:/queue/jwt.query\nreceipt:r\n\nx\x00")
		rc.expect("RECEIPT")
	})
	t.Run("expired at connect", func(t *testing.T) {
		rc := ts.rawTCP(t)
		rc.send("CONNECT\naccept-version:1.2\nhost:/\npasscode:" + fx.token(t, "carol", -time.Minute, nil) + "\n\n\x00")
		rc.expectError("token expired")
	})
	t.Run("bad signature", func(t *testing.T) {
		forged := good[:strings.LastIndexByte(good, '.')+1] + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
		rc := ts.rawTCP(t)
		rc.send("CONNECT\naccept-version:1.2\nhost:/\npasscode:" + forged + "\n\n\x00")
		rc.expectError("authentication failed")
	})
	t.Run("bad token at handshake", func(t *testing.T) {
		_, resp, err := ts.rawWSWith(t, ts.WSURL+"?access_token=not.a.token", nil, "v12.stomp")
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("handshake with a bad token: %v, %v; want 401", err, resp)
		}
		if got := strings.Join(resp.Header.Values("WWW-Authenticate"), " | "); !strings.Contains(got, `Bearer realm="stompd", error="invalid_token"`) {
			t.Fatalf("WWW-Authenticate %q", got)
		}
	})
	t.Run("expires during the session", func(t *testing.T) {
		rc := ts.rawTCP(t)
		rc.connect("1.2", "passcode:"+fx.token(t, "carol", 2*time.Second, nil))
		rc.send("SUBSCRIBE\nid:chat\ndestination:/topic/chat\nreceipt:s\n\n\x00")
		rc.expect("RECEIPT")
		rc.expectError("token expired")
	})
	if got := metricValue(t, reg, "stompd_auth_attempts_total", "method", "jwt", "result", "expired"); got != 1 {
		t.Errorf("auth_attempts{method=jwt,result=expired} = %v, want 1", got)
	}
	// A session's close is counted once the server has finished with it, just after the client saw it.
	waitFor(t, "two token_expired closes counted", func() bool {
		return metricValue(t, reg, "stompd_connections_closed_total", "transport", "tcp", "reason", "token_expired") == 2
	})
}

// TestAuthHandshakeRequired: an upgrade without credentials, or with bad ones, is refused with 401
// and a challenge for each configured method, before any WebSocket traffic; good ones pass.
func TestAuthHandshakeRequired(t *testing.T) {
	fx := newAuthFixture(t, map[string]string{"alice": "wonderland"})
	ts := startServer(t, fx.serverConfig(t, nil, stompws.HandshakeAuthRequired))
	for _, tc := range []struct {
		name   string
		header http.Header
		url    string
		status int
	}{
		{"none", nil, ts.WSURL, http.StatusUnauthorized},
		{"wrong basic", http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:queen"))}}, ts.WSURL, http.StatusUnauthorized},
		{"expired token", nil, ts.WSURL + "?access_token=" + fx.token(t, "alice", -time.Minute, nil), http.StatusUnauthorized},
		{"basic", http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wonderland"))}}, ts.WSURL, http.StatusSwitchingProtocols},
		{"token", nil, ts.WSURL + "?access_token=" + fx.token(t, "alice", time.Hour, nil), http.StatusSwitchingProtocols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, resp, err := ts.rawWSWith(t, tc.url, tc.header, "v12.stomp")
			if tc.status == http.StatusSwitchingProtocols {
				if err != nil {
					t.Fatal(err)
				}
				rc.connect("1.2")
				return
			}
			if err == nil || resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("handshake: %v, %v; want %d", err, resp, tc.status)
			}
			challenges := strings.Join(resp.Header.Values("WWW-Authenticate"), " | ")
			if !strings.Contains(challenges, `Basic realm="stompd"`) || !strings.Contains(challenges, `Bearer realm="stompd"`) {
				t.Fatalf("WWW-Authenticate %q, want Basic and Bearer challenges", challenges)
			}
		})
	}
}

// roundTripAs subscribes conn to dest, sends there and checks the message's user-id.
func roundTripAs(t *testing.T, conn *stomp.Conn, dest, user string) {
	t.Helper()
	sub, err := conn.Subscribe(dest, stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Send(dest, "text/plain", []byte("hi"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, sub); m.Header.Get("user-id") != user {
		t.Fatalf("user-id %q, want %q", m.Header.Get("user-id"), user)
	}
}

// authTestPage serves the STOMP.js bundle, auth_scenario.js and a page that runs it with the token in
// the WebSocket URL's access_token, as a browser must.
func authTestPage(token, user string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/auth-test/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><title>stompd auth test</title>
<script src="stomp.umd.min.js"></script><script src="auth_scenario.js"></script>
<script>
const ws = 'ws://' + location.host + '/ws';
runAuthScenario(StompJs, ws + '?access_token=' + encodeURIComponent(%q), {}, %q,
  { login: 'alice', passcode: 'not-her-password' }, {}, ws).then(
  (passed) => { window.stompResult = { ok: true, passed }; },
  (e) => { window.stompResult = { ok: false, error: String((e && e.message) || e) }; });
</script>`, token, user)
	})
	mux.HandleFunc("/auth-test/stomp.umd.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join("js", "node_modules", "@stomp", "stompjs", "bundles", "stomp.umd.min.js"))
	})
	mux.HandleFunc("/auth-test/auth_scenario.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join("js", "auth_scenario.js"))
	})
	return mux
}

// TestAuthStompJS: STOMP.js logs in with a token as passcode and with a users-file password in Node,
// and with a token in the URL in Chromium; each chats under its user name, is refused a SEND to the
// stock topics, and sees bad credentials refused.
func TestAuthStompJS(t *testing.T) {
	requireJS(t, true)
	fx := newAuthFixture(t, map[string]string{"alice": "wonderland"})
	dave := fx.token(t, "dave", time.Hour, nil)
	ts := startServer(t, fx.serverConfig(t, nil, stompws.HandshakeAuthOptional), func(c *serverConfig) {
		c.routes["/auth-test/"] = authTestPage(fx.token(t, "erin", time.Hour, nil), "erin")
		c.onStart = append(c.onStart, func(b *broker.Broker) {
			room := chat.New(b, chat.Options{})
			t.Cleanup(room.Close)
		})
	})
	for _, tc := range []struct {
		name string
		spec map[string]any
	}{
		{"node token in passcode", map[string]any{"connectHeaders": map[string]string{"passcode": dave}, "user": "dave",
			"badHeaders": map[string]string{"passcode": fx.token(t, "dave", time.Hour, nil)[:40] + "x.y.z"}}},
		{"node password", map[string]any{"connectHeaders": map[string]string{"login": "alice", "passcode": "wonderland"}, "user": "alice",
			"badHeaders": map[string]string{"login": "alice", "passcode": "queen"}}},
		{"node bearer header", map[string]any{"connectHeaders": map[string]string{"Authorization": "Bearer " + dave}, "user": "dave", "badHeaders": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec, _ := json.Marshal(tc.spec)
			res := runNode(t, "auth_node.mjs", ts.WSURL, string(spec))
			t.Logf("%d checks passed: %s", len(res.Passed), strings.Join(res.Passed, "; "))
		})
	}
	t.Run("chromium access_token", func(t *testing.T) {
		res := runNode(t, "stompjs_browser.mjs", ts.HTTPURL+"/auth-test/")
		if len(res.Passed) < 4 {
			t.Fatalf("only %d checks passed: %v", len(res.Passed), res.Passed)
		}
		t.Logf("%d checks passed: %s", len(res.Passed), strings.Join(res.Passed, "; "))
	})
}

// TestAuthFlags runs the binary with -users, a config file of rules and -auth-handshake=required.
func TestAuthFlags(t *testing.T) {
	fx := newAuthFixture(t, map[string]string{"bob": "builder:ops"})
	config := filepath.Join(t.TempDir(), "stompd.yaml")
	rules := "rules:\n  - roles: [ops]\n    publish: [\"/queue/#\"]\n    subscribe: [\"/queue/#\"]\n"
	if err := os.WriteFile(config, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-users", fx.usersFile,
		"-config", config, "-auth-handshake", "required", "-auth-failure-delay", "0")

	c, err := stomp.Dial("tcp", stompAddr, noHeartBeats, stomp.ConnOpt.Login("bob", "builder"), stomp.ConnOpt.Logger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.MustDisconnect()
	roundTripAs(t, c, "/queue/flags", "bob")

	if _, err := stomp.Dial("tcp", stompAddr, noHeartBeats, stomp.ConnOpt.Login("bob", "wrong"), stomp.ConnOpt.Logger(quietLogger{})); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("wrong password: %v, want authentication failed", err)
	}
	resp, err := http.Get(p.URL() + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Header.Values("WWW-Authenticate")) == 0 {
		t.Fatalf("/ws without credentials: %s %v, want 401 with a challenge", resp.Status, resp.Header)
	}
	if strings.Contains(p.Log(), "builder") {
		t.Fatal("the log holds a password")
	}
}
