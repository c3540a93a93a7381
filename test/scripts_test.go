package test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shellScripts are the project's shell scripts, seen from this package's directory.
func shellScripts(t *testing.T) []string {
	t.Helper()
	scripts, err := filepath.Glob("bench/*.sh")
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) == 0 {
		t.Fatal("no bench/*.sh scripts")
	}
	return append(scripts, "run")
}

func TestShellcheck(t *testing.T) {
	shellcheck := requireTool(t, "shellcheck", "shellcheck")
	for _, script := range shellScripts(t) {
		t.Run(script, func(t *testing.T) {
			// --norc: the verdict must not depend on a .shellcheckrc somewhere above the checkout.
			runTool(t, ".", shellcheck, "--norc", script)
		})
	}
}

// TestScriptUsage checks the answers the scripts give before they start anything: a usage error is
// exit 2, and a RabbitMQ that was never started is reported stopped.
func TestScriptUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		env        []string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "rabbitmq.sh without arguments", args: []string{"bench/rabbitmq.sh"}, wantCode: 2, wantStderr: "usage:"},
		{name: "rabbitmq.sh unknown action", args: []string{"bench/rabbitmq.sh", "restart", dir}, wantCode: 2, wantStderr: "usage:"},
		{name: "rabbitmq.sh status when stopped", args: []string{"bench/rabbitmq.sh", "status", dir}, wantCode: 1, wantStdout: "stopped\n"},
		{name: "rabbitmq.sh stop when stopped", args: []string{"bench/rabbitmq.sh", "stop", dir}, wantCode: 0},
		{name: "compare.sh unknown broker", env: []string{"BROKERS=stompd-ws activemq"}, args: []string{"bench/compare.sh"}, wantCode: 2, wantStderr: `unknown broker activemq`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("bash", tt.args...)
			cmd.Env = append(cmd.Environ(), tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			code := exitCodeOf(t, cmd.Run())
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.wantCode, stderr.String())
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
