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

// TestInsecureAndClientCertificates: -insecure reaches a TLS broker that nothing vouches for, and
// -cert/-key present a client certificate to a broker that requires one, which refuses the CLI
// without them; over wss:// and tcps://.
func TestInsecureAndClientCertificates(t *testing.T) {
	dir := t.TempDir()
	cas, certFile, keyFile := stompwstest.ClientCertificate(t, dir)
	open := stompwstest.Start(t, stompwstest.Config{TLS: true})
	strict := stompwstest.Start(t, stompwstest.Config{TLS: true, ClientCAs: cas})
	ca := filepath.Join(dir, "server-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: strict.Certificate.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		transport     string
		open, strict  string
		openTB, strTB *stompwstest.Server
	}{
		{"wss", open.WSURL, strict.WSURL, open, strict},
		{"tls", "tcps://" + open.TCPAddr, "tcps://" + strict.TCPAddr, open, strict},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			insecureQ, mtlsQ := "/queue/insecure-"+tc.transport, "/queue/mtls-"+tc.transport
			mustSucceed(t, runStomp(t, "", nil, "pub", "-url", tc.open, "-insecure", insecureQ, "unchecked"), "pub -insecure")
			if ready, _, _ := tc.openTB.Broker.QueueDepth(insecureQ); ready != 1 {
				t.Fatalf("pub -insecure queued %d messages, want 1", ready)
			}
			r := runStomp(t, "", nil, "sub", "-url", tc.open, "-insecure", "-count", "1", insecureQ)
			mustSucceed(t, r, "sub -insecure")
			if r.stdout != "unchecked\n" {
				t.Errorf("sub -insecure printed %q", r.stdout)
			}

			mustSucceed(t, runStomp(t, "", nil, "pub", "-url", tc.strict, "-ca", ca, "-cert", certFile, "-key", keyFile, mtlsQ, "mutual"), "pub -cert -key")
			if ready, _, _ := tc.strTB.Broker.QueueDepth(mtlsQ); ready != 1 {
				t.Fatalf("pub with a client certificate queued %d messages, want 1", ready)
			}
			r = runStomp(t, "", nil, "pub", "-url", tc.strict, "-ca", ca, mtlsQ, "anonymous")
			if r.code != exitFailure || !strings.Contains(r.stderr, "certificate") {
				t.Errorf("pub without a client certificate: exit %d, stderr %q; want 1 and a word on the certificate", r.code, r.stderr)
			}
			if ready, _, _ := tc.strTB.Broker.QueueDepth(mtlsQ); ready != 1 {
				t.Errorf("the broker holds %d messages after the refused pub, want 1", ready)
			}
		})
	}
}
