package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	path string // its certificate, PEM
}

var serialCounter struct {
	sync.Mutex
	n int64
}

func nextSerial() *big.Int {
	serialCounter.Lock()
	defer serialCounter.Unlock()
	serialCounter.n++
	return big.NewInt(serialCounter.n)
}

func newTestCA(t testing.TB, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, pool: x509.NewCertPool(), path: filepath.Join(dir, name+".crt")}
	ca.pool.AddCert(cert)
	writePEM(t, ca.path, "CERTIFICATE", der)
	return ca
}

// issue writes a certificate for commonName signed by ca, and its key, to certPath and keyPath: a
// server certificate for localhost and 127.0.0.1, or a client certificate.
func (ca *testCA) issue(t testing.TB, commonName string, client bool, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames, tmpl.IPAddresses = nil, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyPath, "PRIVATE KEY", keyDER)
	writePEM(t, certPath, "CERTIFICATE", der)
}

// clientCert loads a client certificate issued by ca.
func (ca *testCA) clientCert(t *testing.T, dir, name string) tls.Certificate {
	t.Helper()
	certPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	ca.issue(t, name, true, certPath, keyPath)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func writePEM(t testing.TB, path, blockType string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsTestFiles makes a CA, a server certificate for it and a second CA for client certificates.
func tlsTestFiles(t *testing.T) (dir string, ca *testCA, files tlsFiles) {
	t.Helper()
	dir = t.TempDir()
	ca = newTestCA(t, dir, "server-ca")
	files = tlsFiles{Cert: filepath.Join(dir, "server.crt"), Key: filepath.Join(dir, "server.key")}
	ca.issue(t, "server-1", false, files.Cert, files.Key)
	return dir, ca, files
}

// greetingServer accepts TLS connections and writes "hello\n" to each, then echoes what it reads,
// until the test ends.
func greetingServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := tls.NewListener(ln, cfg)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				if _, err := io.WriteString(c, "hello\n"); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		tl.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// greet dials addr, reads the greeting and returns the connection and the server certificate's
// common name; the error is the handshake's or the first read's (where TLS 1.3 reports a refused
// client certificate).
func greet(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, string, error) {
	t.Helper()
	d := &net.Dialer{Timeout: waitTimeout}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, "", err
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return nil, "", err
	}
	if line != "hello\n" {
		return nil, "", errors.New("unexpected greeting " + line)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

// echoes checks that c still carries data both ways.
func echoes(t *testing.T, c *tls.Conn) {
	t.Helper()
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatalf("old connection: write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("old connection: read %q, %v", buf, err)
	}
}

const waitTimeout = 20 * time.Second

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTLSFlagErrors(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"cert without key", []string{"-tls-cert", "c.pem"}, "flag -tls-cert needs -tls-key"},
		{"key without cert", []string{"-tls-key", "k.pem"}, "flag -tls-key needs -tls-cert"},
		{"client CA without cert", []string{"-tls-client-ca", "ca.pem"}, "flag -tls-client-ca needs -tls-cert"},
		{"bad origin pattern", []string{"-allowed-origins", "https://ok.example.com,[bad"}, `invalid pattern "[bad" in flag -allowed-origins`},
		{"all set", []string{"-tls-cert", "c.pem", "-tls-key", "k.pem", "-tls-client-ca", "ca.pem",
			"-allowed-origins", " https://app.example.com , https://*.example.com "}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, env(nil), io.Discard)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				got := c.serverOptions(nil, "v", nil).OriginPatterns
				if strings.Join(got, "|") != "https://app.example.com|https://*.example.com" || !c.tlsOn() {
					t.Fatalf("origin patterns %q, tls %v", got, c.tlsOn())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadTLSConfigErrors(t *testing.T) {
	dir, ca, files := tlsTestFiles(t)
	other := filepath.Join(dir, "other.key")
	ca.issue(t, "other", false, filepath.Join(dir, "other.crt"), other)
	notPEM := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		files   tlsFiles
		wantErr string
		is      error
	}{
		{"missing cert", tlsFiles{Cert: filepath.Join(dir, "nope.crt"), Key: files.Key}, "nope.crt", os.ErrNotExist},
		{"key of another certificate", tlsFiles{Cert: files.Cert, Key: other}, "private key does not match", nil},
		{"client CA without certificates", tlsFiles{Cert: files.Cert, Key: files.Key, ClientCA: notPEM}, "empty.pem", errNoClientCAs},
		{"missing client CA", tlsFiles{Cert: files.Cert, Key: files.Key, ClientCA: filepath.Join(dir, "nope-ca.crt")}, "nope-ca.crt", os.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadTLSConfig(tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v is not %v", err, tc.is)
			}
		})
	}
}

func TestTLSVersionsAndClientCertificates(t *testing.T) {
	dir, ca, files := tlsTestFiles(t)
	clientCA := newTestCA(t, dir, "client-ca")
	files.ClientCA = clientCA.path
	r, err := newCertReloader(files, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := greetingServer(t, r.listenerConfig())
	good := clientCA.clientCert(t, dir, "alice")
	stranger := ca.clientCert(t, dir, "mallory") // signed by a CA the server does not trust for clients

	cases := []struct {
		name    string
		cfg     *tls.Config
		wantErr string // the server's alert; empty when the handshake must succeed
	}{
		{"client certificate", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{good}}, ""},
		{"TLS 1.2 with client certificate", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{good}, MaxVersion: tls.VersionTLS12}, ""},
		{"no client certificate", &tls.Config{RootCAs: ca.pool}, "remote error: tls: certificate required"},
		{"TLS 1.2 without client certificate", &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS12}, "remote error: tls:"},
		// The client offers only certificates from the CAs the server names, so it sends none.
		{"client certificate from another CA", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{stranger}}, "remote error: tls: certificate required"},
		{"client certificate from another CA, sent anyway", &tls.Config{RootCAs: ca.pool,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger, nil }},
			"remote error: tls: unknown certificate authority"},
		{"TLS 1.1", &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{good}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
			"remote error: tls: protocol version not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.ServerName = "localhost"
			_, cn, err := greet(t, addr, tc.cfg)
			if tc.wantErr == "" {
				if err != nil || cn != "server-1" {
					t.Fatalf("refused: %v (server %q)", err, cn)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want the server's alert %q", err, tc.wantErr)
			}
		})
	}
}

// TestCertReloaderKeepsOldConnections replaces the certificate in every way run does (SIGHUP's Reload,
// the file poll, the watch loop) and checks that new handshakes see the new certificate, a failed
// reload keeps the previous one, and a connection made before any of it keeps working.
func TestCertReloaderKeepsOldConnections(t *testing.T) {
	_, ca, files := tlsTestFiles(t)
	var logs syncBuffer
	r, err := newCertReloader(files, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := greetingServer(t, r.listenerConfig())
	client := &tls.Config{RootCAs: ca.pool, ServerName: "localhost"}
	serverName := func() string {
		t.Helper()
		c, cn, err := greet(t, addr, client)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		return cn
	}
	old, cn, err := greet(t, addr, client)
	if err != nil || cn != "server-1" {
		t.Fatalf("first connection: %v, server %q", err, cn)
	}

	// A pair that is not one keeps the current certificate, and says so.
	if err := os.WriteFile(files.Key, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("Reload of a broken key succeeded")
	}
	if !strings.Contains(logs.String(), "tls reload failed; keeping the current certificate") {
		t.Fatalf("no error logged: %s", logs.String())
	}
	if got := serverName(); got != "server-1" {
		t.Fatalf("after a failed reload the server shows %q", got)
	}

	ca.issue(t, "server-2", false, files.Cert, files.Key)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serverName(); got != "server-2" {
		t.Fatalf("after Reload the server shows %q, want server-2", got)
	}
	echoes(t, old)

	// Unchanged files are not reloaded; rewritten ones are.
	if err := r.ReloadIfChanged(); err != nil {
		t.Fatal(err)
	}
	ca.issue(t, "server-3", false, files.Cert, files.Key)
	future := time.Now().Add(time.Minute) // a new mtime even where timestamps are coarse
	for _, p := range []string{files.Cert, files.Key} {
		if err := os.Chtimes(p, future, future); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.ReloadIfChanged(); err != nil {
		t.Fatal(err)
	}
	if got := serverName(); got != "server-3" {
		t.Fatalf("after a file change the server shows %q, want server-3", got)
	}
	echoes(t, old)

	// The watch loop: a signal, then a file change.
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		r.watch(ctx, hup, 10*time.Millisecond)
	}()
	defer func() { cancel(); <-watching }()
	ca.issue(t, "server-4", false, files.Cert, files.Key)
	hup <- os.Interrupt
	eventually(t, "server-4 after a signal", func() bool { return serverName() == "server-4" })
	ca.issue(t, "server-5", false, files.Cert, files.Key)
	later := future.Add(time.Minute)
	for _, p := range []string{files.Cert, files.Key} {
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "server-5 after a file change", func() bool { return serverName() == "server-5" })
	echoes(t, old)
}

// TestRunServesTLS runs stompd with TLS: STOMP over TLS and over wss:// work with a client trusting
// the CA, plain connections to the same ports do not, the metrics listener follows -metrics-tls, and
// the startup line shows the secure schemes.
func TestRunServesTLS(t *testing.T) {
	_, ca, files := tlsTestFiles(t)
	for _, metricsTLS := range []bool{true, false} {
		name := "metrics over TLS"
		if !metricsTLS {
			name = "metrics over plain HTTP"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan listenAddrs, 1)
			exit := make(chan int, 1)
			var logs syncBuffer
			args := []string{"-http-addr", "127.0.0.1:0", "-stomp-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0",
				"-log-format", "json", "-stocks=false", "-tls-cert", files.Cert, "-tls-key", files.Key}
			if !metricsTLS {
				args = append(args, "-metrics-tls=false")
			}
			go func() { exit <- run(ctx, args, env(nil), io.Discard, &logs, ready) }()
			var addrs listenAddrs
			select {
			case addrs = <-ready:
			case code := <-exit:
				t.Fatalf("run exited %d: %s", code, logs.String())
			}
			defer func() {
				cancel()
				if code := <-exit; code != 0 {
					t.Errorf("exit code %d", code)
				}
			}()
			client := &tls.Config{RootCAs: ca.pool, ServerName: "localhost"}

			if !strings.Contains(logs.String(), `"websocket":"wss://`) || !strings.Contains(logs.String(), `"stomp":"tls://`) {
				t.Errorf("startup line lacks wss:// or tls://: %s", logs.String())
			}

			tc, err := tls.Dial("tcp", addrs.STOMP, client)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := stomp.Connect(tc, stomp.ConnOpt.HeartBeat(0, 0))
			if err != nil {
				t.Fatalf("STOMP over TLS: %v", err)
			}
			defer sc.Disconnect()

			httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: client}}
			defer httpClient.CloseIdleConnections()
			dctx, dcancel := context.WithTimeout(context.Background(), waitTimeout)
			defer dcancel()
			ws, _, err := websocket.Dial(dctx, "wss://"+addrs.HTTP+"/ws", &websocket.DialOptions{
				Subprotocols: []string{"v12.stomp"}, HTTPClient: httpClient})
			if err != nil {
				t.Fatalf("wss dial: %v", err)
			}
			wc, err := stomp.Connect(websocket.NetConn(context.Background(), ws, websocket.MessageText), stomp.ConnOpt.HeartBeat(0, 0))
			if err != nil {
				t.Fatalf("STOMP over wss: %v", err)
			}
			defer wc.Disconnect()

			// Plain clients get no STOMP and no HTTP from the TLS ports.
			if nc, err := net.DialTimeout("tcp", addrs.STOMP, waitTimeout); err == nil {
				_ = nc.SetDeadline(time.Now().Add(waitTimeout))
				if _, err := stomp.Connect(nc, stomp.ConnOpt.HeartBeat(0, 0)); err == nil {
					t.Error("plain STOMP connected to the TLS port")
				}
				nc.Close()
			}
			if resp, err := http.Get("http://" + addrs.HTTP + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Error("plain HTTP got 200 from the TLS port")
				}
			}

			metricsURL := "https://" + addrs.Metrics + "/metrics"
			if !metricsTLS {
				metricsURL = "http://" + addrs.Metrics + "/metrics"
			}
			resp, err := httpClient.Get(metricsURL)
			if err != nil {
				t.Fatalf("GET %s: %v", metricsURL, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s", metricsURL, resp.Status)
			}
		})
	}
}

// TestRunRefusesBadTLSFiles checks that a certificate that does not load stops the start, and that
// -check-config finds it too.
func TestRunRefusesBadTLSFiles(t *testing.T) {
	dir, _, files := tlsTestFiles(t)
	missing := filepath.Join(dir, "missing.key")
	for _, extra := range [][]string{nil, {"-check-config"}} {
		var stderr bytes.Buffer
		args := append([]string{"-http-addr", "127.0.0.1:0", "-stomp-addr", "", "-tls-cert", files.Cert, "-tls-key", missing}, extra...)
		if code := run(context.Background(), args, env(nil), io.Discard, &stderr, nil); code != 1 {
			t.Errorf("%v: exit code %d, want 1", extra, code)
		}
		if !strings.Contains(stderr.String(), "missing.key") {
			t.Errorf("%v: stderr %q does not name the key file", extra, stderr.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// BenchmarkReloadIfChanged measures the periodic check when nothing changed: what every poll costs.
func BenchmarkReloadIfChanged(b *testing.B) {
	files := benchTLSFiles(b, b.TempDir())
	r, err := newCertReloader(files, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := r.ReloadIfChanged(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConfigForClient measures what each handshake adds to pick the current certificate.
func BenchmarkConfigForClient(b *testing.B) {
	files := benchTLSFiles(b, b.TempDir())
	r, err := newCertReloader(files, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	get := r.listenerConfig().GetConfigForClient
	hello := &tls.ClientHelloInfo{}
	b.ReportAllocs()
	for b.Loop() {
		if cfg, err := get(hello); err != nil || cfg == nil {
			b.Fatal(cfg, err)
		}
	}
}

func benchTLSFiles(b *testing.B, dir string) tlsFiles {
	ca := newTestCA(b, dir, "bench-ca")
	files := tlsFiles{Cert: filepath.Join(dir, "server.crt"), Key: filepath.Join(dir, "server.key"), ClientCA: ca.path}
	ca.issue(b, "server", false, files.Cert, files.Key)
	return files
}
