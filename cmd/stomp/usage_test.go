package main

import (
	"net"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // substring; "" checks nothing
		wantStderr string
	}{
		{name: "no command", args: nil, wantCode: exitUsage, wantStderr: "Commands:"},
		{name: "help", args: []string{"-h"}, wantCode: exitOK, wantStdout: "Exit codes:"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: exitUsage, wantStderr: `unknown command "frobnicate"`},
		{name: "bench without scenario", args: []string{"bench"}, wantCode: exitUsage, wantStderr: "want one SCENARIO"},
		{name: "sub help", args: []string{"sub", "-h"}, wantCode: exitOK, wantStdout: "usage: stomp sub [flags] DEST..."},
		{name: "pub help", args: []string{"pub", "-h"}, wantCode: exitOK, wantStdout: "-insecure"},
		{name: "bad flag", args: []string{"sub", "-nope", "/queue/a"}, wantCode: exitUsage, wantStderr: "flag provided but not defined: -nope"},
		{name: "bad flag value", args: []string{"sub", "-count", "many", "/queue/a"}, wantCode: exitUsage, wantStderr: "-count"},
		{name: "sub without destination", args: []string{"sub"}, wantCode: exitUsage, wantStderr: "no destination"},
		{name: "sub bad ack", args: []string{"sub", "-ack", "sometimes", "/queue/a"}, wantCode: exitUsage, wantStderr: "-ack"},
		{name: "sub headers and json", args: []string{"sub", "-headers", "-json", "/queue/a"}, wantCode: exitUsage, wantStderr: "exclude"},
		{name: "pub without body", args: []string{"pub", "/queue/a"}, wantCode: exitUsage, wantStderr: "want DEST and BODY"},
		{name: "pub lines needs stdin", args: []string{"pub", "-lines", "/queue/a", "x"}, wantCode: exitUsage, wantStderr: "-lines"},
		{name: "pub count zero", args: []string{"pub", "-count", "0", "/queue/a", "x"}, wantCode: exitUsage, wantStderr: "-count"},
		{name: "pub header without colon", args: []string{"pub", "-H", "nocolon", "/queue/a", "x"}, wantCode: exitUsage, wantStderr: "key:value"},
		{name: "pub reserved header", args: []string{"pub", "-H", "receipt:1", "/queue/a", "x"}, wantCode: exitUsage, wantStderr: "set by pub itself"},
		{name: "bad scheme", args: []string{"pub", "-url", "http://localhost", "/queue/a", "x"}, wantCode: exitUsage, wantStderr: "unknown scheme"},
		{name: "no scheme", args: []string{"pub", "-url", "localhost:61613", "/queue/a", "x"}, wantCode: exitUsage, wantStderr: "SCHEME://HOST"},
		{name: "tls flag on plain URL", args: []string{"pub", "-url", "tcp://127.0.0.1:1", "-insecure", "/queue/a", "x"}, wantCode: exitUsage, wantStderr: "need a tcps://"},
		{name: "cert without key", args: []string{"pub", "-url", "tcps://127.0.0.1:1", "-cert", "c.pem", "/queue/a", "x"}, wantCode: exitUsage, wantStderr: "-cert and -key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runStomp(t, "", nil, tc.args...)
			if r.code != tc.wantCode {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, tc.wantCode, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.wantStdout) || !strings.Contains(r.stderr, tc.wantStderr) {
				t.Errorf("stdout %q, stderr %q; want them to contain %q and %q", r.stdout, r.stderr, tc.wantStdout, tc.wantStderr)
			}
		})
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	tb := startBroker(t)
	// "--" ends the flags, so a body may start with a dash.
	mustSucceed(t, runStomp(t, "", nil, "pub", "/queue/order", "-url", tb.tcpURL, "--", "-5"), "pub")
	r := runStomp(t, "", nil, "sub", "/queue/order", "-count", "1", "-url", tb.tcpURL)
	mustSucceed(t, r, "sub")
	if r.stdout != "-5\n" {
		t.Errorf("sub printed %q, want %q", r.stdout, "-5\n")
	}
}

func TestTimeouts(t *testing.T) {
	tb := startBroker(t)
	silent, refusedURL := deadEnds(t)

	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "sub idle", args: []string{"sub", "-url", tb.tcpURL, "-timeout", "100ms", "/queue/quiet"}, wantCode: exitTimeout, wantStderr: "no message within -timeout 100ms"},
		{name: "sub idle over websocket", args: []string{"sub", "-url", tb.wsURL, "-timeout", "100ms", "/topic/quiet"}, wantCode: exitTimeout, wantStderr: "-timeout"},
		{name: "connect", args: []string{"pub", "-url", "tcp://" + silent.Addr().String(), "-connect-timeout", "200ms", "/queue/a", "x"}, wantCode: exitTimeout, wantStderr: "-connect-timeout"},
		{name: "connection refused", args: []string{"pub", "-url", refusedURL, "/queue/a", "x"}, wantCode: exitFailure, wantStderr: "connect " + refusedURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runStomp(t, "", nil, tc.args...)
			if r.code != tc.wantCode || !strings.Contains(r.stderr, tc.wantStderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.wantCode, tc.wantStderr)
			}
		})
	}
}

// deadEnds returns a listener that never accepts (the kernel completes TCP handshakes, but no
// CONNECTED comes), closed at the end of the test, and the URL of a port that refuses connections.
func deadEnds(t *testing.T) (silent net.Listener, refusedURL string) {
	t.Helper()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL = "tcp://" + refused.Addr().String()
	refused.Close()
	return silent, refusedURL
}
