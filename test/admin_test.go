package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3"
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
