package test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The STOMP.js tests need Node, the npm modules in test/js and Debian's Chromium. test/run installs them
// and sets STOMPD_REQUIRE_TOOLS=1, which turns a missing piece into a failure instead of a skip.
func requireJS(t *testing.T, needChromium bool) {
	t.Helper()
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node"
	} else if _, err := os.Stat(filepath.Join("js", "node_modules", "@stomp", "stompjs")); err != nil {
		missing = "test/js/node_modules (npm ci in test/js)"
	} else if needChromium {
		if _, err := os.Stat(chromiumPath()); err != nil {
			missing = "chromium at " + chromiumPath()
		}
	}
	if missing != "" {
		missingTool(t, missing)
	}
}

// missingTool fails the test when STOMPD_REQUIRE_TOOLS is set (test/run and CI set it, having
// installed everything) and skips it otherwise, naming what is missing.
func missingTool(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("STOMPD_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s is missing; test/run installs it", what)
	}
	t.Skipf("%s is missing; run test/run, which installs it", what)
}

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// defaultHeartBeats lets the server take part in heart-beats as in production: the scenario checks that
// a STOMP.js client asking for 2000,2000 is answered in kind.
func defaultHeartBeats(c *serverConfig) {
	c.heartBeats = true
}

type jsResult struct {
	OK      bool     `json:"ok"`
	Passed  []string `json:"passed"`
	Error   string   `json:"error"`
	Console []string `json:"console"`
}

// runNode runs a script in test/js and decodes its one-line JSON result.
func runNode(t *testing.T, script string, args ...string) jsResult {
	t.Helper()
	return runClientScript(t, "js", "node", append([]string{script}, args...)...)
}

// runClientScript runs a client's test script with its interpreter in dir (under test/) and decodes
// the one-line JSON result that the last line of its output holds; it fails the test unless ok.
func runClientScript(t *testing.T, dir, interpreter string, args ...string) jsResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, interpreter, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res jsResult
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("%s %v: no result (%v); stdout %q stderr %q", interpreter, args, runErr, stdout.String(), stderr.String())
	}
	if !res.OK {
		t.Fatalf("%s %v failed: %s\npassed: %s\nconsole: %s\nstderr: %s", interpreter, args, res.Error,
			strings.Join(res.Passed, "; "), strings.Join(res.Console, "\n"), stderr.String())
	}
	return res
}

func TestStompJSNode(t *testing.T) {
	requireJS(t, false)
	ts := startServer(t, defaultHeartBeats)
	res := runNode(t, "stompjs_node.mjs", ts.WSURL)
	if len(res.Passed) < 10 {
		t.Fatalf("only %d checks passed: %v", len(res.Passed), res.Passed)
	}
	t.Logf("STOMP.js in Node: %d checks passed: %s", len(res.Passed), strings.Join(res.Passed, "; "))
}

// browserTestPage serves the STOMP.js bundle, the shared scenario and a page that runs it against the
// server it was loaded from.
func browserTestPage() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/browser-test/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><meta charset="utf-8"><title>stompd STOMP.js test</title>
<script src="stomp.umd.min.js"></script><script src="scenario.js"></script>
<script>
runStompScenario(StompJs, 'ws://' + location.host + '/ws').then(
  (passed) => { window.stompResult = { ok: true, passed }; },
  (e) => { window.stompResult = { ok: false, error: String((e && e.message) || e) }; });
</script>`))
	})
	mux.HandleFunc("/browser-test/stomp.umd.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join("js", "node_modules", "@stomp", "stompjs", "bundles", "stomp.umd.min.js"))
	})
	mux.HandleFunc("/browser-test/scenario.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join("js", "scenario.js"))
	})
	return mux
}

func TestStompJSChromium(t *testing.T) {
	requireJS(t, true)
	ts := startServer(t, defaultHeartBeats, func(c *serverConfig) { c.routes["/browser-test/"] = browserTestPage() })
	res := runNode(t, "stompjs_browser.mjs", ts.HTTPURL+"/browser-test/")
	if len(res.Passed) < 10 {
		t.Fatalf("only %d checks passed: %v", len(res.Passed), res.Passed)
	}
	t.Logf("STOMP.js in Chromium: %d checks passed: %s", len(res.Passed), strings.Join(res.Passed, "; "))
}
