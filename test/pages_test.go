package test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The page tests run test/js/pages.mjs, which opens stompd's own pages in headless Chromium, against the
// real binary (./cmd/stompd, built once) with its built-in stock feed and chat room.

// screenshotDir is where pages.mjs saves its PNGs: $STOMPD_SCREENSHOTS when set (kept after the run),
// else a temporary directory.
func screenshotDir(t *testing.T) string {
	if dir := os.Getenv("STOMPD_SCREENSHOTS"); dir != "" {
		return dir
	}
	return t.TempDir()
}

// runPages runs one pages.mjs scenario against base. When the script prints RESTART, restart is called
// and the script is told RESTARTED on its stdin. The script's last line is its JSON result.
func runPages(t *testing.T, scenario, base string, restart func(), env ...string) jsResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := screenshotDir(t)
	// base may name two nodes of a cluster, separated by a space, for the cluster scenarios.
	cmd := exec.CommandContext(ctx, "node", append([]string{"pages.mjs", scenario}, strings.Fields(base)...)...)
	cmd.Dir = "js"
	cmd.Env = append(append(os.Environ(), "STOMPD_SCREENSHOTS="+dir, "CHROMIUM="+chromiumPath()), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited { // a restart failed the test: do not leave the browser running
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	var lines []string
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if line != "RESTART" {
			continue
		}
		if restart == nil {
			t.Errorf("%s asked for a broker restart", scenario)
			break
		}
		restart()
		if _, err := io.WriteString(stdin, "RESTARTED\n"); err != nil {
			t.Errorf("telling pages.mjs the broker is back: %v", err)
		}
	}
	stdin.Close()
	_, _ = io.Copy(io.Discard, stdout)
	waitErr := cmd.Wait()
	waited = true

	var res jsResult
	if len(lines) == 0 || json.Unmarshal([]byte(lines[len(lines)-1]), &res) != nil {
		t.Fatalf("pages.mjs %s: no result (%v); stdout %q; stderr %s", scenario, waitErr, lines, stderr.String())
	}
	t.Logf("%s: screenshots in %s", scenario, dir)
	if !res.OK {
		t.Fatalf("pages.mjs %s failed: %s\npassed: %s\nconsole:\n%s\nstderr: %s", scenario, res.Error,
			strings.Join(res.Passed, "; "), strings.Join(res.Console, "\n"), stderr.String())
	}
	if waitErr != nil {
		t.Fatalf("pages.mjs %s: %v after reporting success; stderr %s", scenario, waitErr, stderr.String())
	}
	return res
}

// TestPages opens each page in Chromium against one stompd: the home page, the stock ticker (all five
// symbols, every price moves within 5 s), the chat room (two people, names, join/leave, members, markup
// shown as text) and the echo page.
func TestPages(t *testing.T) {
	requireJS(t, true)
	p := startStompd(t)
	tests := []struct {
		scenario  string
		minPassed int
	}{
		{"home", 3},
		{"stocks", 4},
		{"chat", 7},
		{"sockjschat", 8},
		{"echo", 1},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			res := runPages(t, tt.scenario, p.URL(), nil)
			if len(res.Passed) < tt.minPassed {
				t.Fatalf("only %d of %d checks passed: %v", len(res.Passed), tt.minPassed, res.Passed)
			}
			t.Logf("%s", strings.Join(res.Passed, "; "))
		})
	}
}

// TestPagesWithTokens runs the chat page against the binary with token authentication on: the page
// passes the ?access_token= of its own URL on to the WebSocket upgrade, and shows user names.
func TestPagesWithTokens(t *testing.T) {
	requireJS(t, true)
	fx := newAuthFixture(t, nil)
	p := startStompd(t, "-jwt-secret", string(fx.secret), "-auth-handshake", "required")
	alice := fx.token(t, "alice", time.Hour, nil)
	tokens, _ := json.Marshal(map[string]string{"alice": alice, "bob": fx.token(t, "bob", time.Hour, nil)})
	res := runPages(t, "authchat", p.URL(), nil, "STOMPD_TOKENS="+string(tokens))
	if len(res.Passed) < 2 {
		t.Fatalf("only %d checks passed: %v", len(res.Passed), res.Passed)
	}
	if strings.Contains(p.Log(), alice) {
		t.Fatal("the broker's log holds an access token")
	}
	t.Logf("%s", strings.Join(res.Passed, "; "))
}

// TestPagesReconnect restarts the broker under an open chat and stock page: both must show the drop,
// reconnect, resubscribe and receive new data.
func TestPagesReconnect(t *testing.T) {
	requireJS(t, true)
	p := startStompd(t)
	restarted := false
	res := runPages(t, "reconnect", p.URL(), func() {
		p.Restart()
		restarted = true
	})
	if !restarted {
		t.Fatal("the scenario passed without the broker being restarted")
	}
	if len(res.Passed) < 4 {
		t.Fatalf("only %d checks passed: %v", len(res.Passed), res.Passed)
	}
	t.Logf("%s", strings.Join(res.Passed, "; "))
}
