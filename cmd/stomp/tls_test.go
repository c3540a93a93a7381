package main

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stompd/stompd/stompws/stompwstest"
)

// TestOverTLS: pub, sub and bench reach a broker over wss:// and tcps:// when -ca names the CA that
// signed its certificate, and refuse it, exit 1 and saying why, when nothing vouches for it. bench
// over wss:// reads through the WebSocket library rather than its own framing.
func TestOverTLS(t *testing.T) {
	s := stompwstest.Start(t, stompwstest.Config{TLS: true})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, transport string }{
		{s.WSURL, "wss"},
		{"tcps://" + s.TCPAddr, "tls"},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			mustSucceed(t, runStomp(t, "", nil, "pub", "-url", tc.url, "-ca", ca, "/queue/secret", "sealed"), "pub")
			r := runStomp(t, "", nil, "sub", "-url", tc.url, "-ca", ca, "-count", "1", "/queue/secret")
			mustSucceed(t, r, "sub")
			if r.stdout != "sealed\n" {
				t.Errorf("sub printed %q, want sealed", r.stdout)
			}

			args := append([]string{"bench", "pairs", "-url", tc.url, "-ca", ca, "-pairs", "2"}, quickBench...)
			r = runStomp(t, "", nil, args...)
			mustSucceed(t, r, "bench")
			rep := decodeReport(t, r)
			if rep.Transport != tc.transport || rep.Delivered <= 0 || rep.Lost != 0 || rep.Duplicated != 0 || rep.OutOfOrder != 0 {
				t.Errorf("bench over %s: transport %q, delivered %d, lost %d, duplicated %d, out of order %d",
					tc.url, rep.Transport, rep.Delivered, rep.Lost, rep.Duplicated, rep.OutOfOrder)
			}

			r = runStomp(t, "", nil, "pub", "-url", tc.url, "/queue/secret", "unsealed")
			if r.code != exitFailure || !strings.Contains(r.stderr, "certificate") {
				t.Errorf("pub without -ca: exit %d, stderr %q; want 1 and a word on the certificate", r.code, r.stderr)
			}
		})
	}
}
