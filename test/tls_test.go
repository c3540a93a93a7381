package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-stomp/stomp/v3"
)

// testPKI is a certificate authority made with openssl for one test, the way an operator makes one
// for a private deployment.
type testPKI struct {
	dir  string
	pool *x509.CertPool // trusts the CA
	CA   string         // the CA certificate, PEM
}

// newTestPKI makes a CA named name in a temporary directory.
func newTestPKI(t *testing.T, name string) *testPKI {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		missingTool(t, "openssl (Debian package openssl)")
	}
	p := &testPKI{dir: t.TempDir()}
	p.CA = filepath.Join(p.dir, "ca.crt")
	p.openssl(t, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN="+name,
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	pem, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	p.pool = x509.NewCertPool()
	if !p.pool.AppendCertsFromPEM(pem) {
		t.Fatal("openssl wrote no CA certificate")
	}
	return p
}

// issue makes a key and a certificate for commonName signed by the CA, for a server on localhost and
// 127.0.0.1 or for a client, and returns their paths (NAME.crt, NAME.key in the CA's directory).
func (p *testPKI) issue(t *testing.T, commonName string, client bool) (cert, key string) {
	t.Helper()
	ext := "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
	if client {
		ext = "extendedKeyUsage=clientAuth\n"
	}
	if err := os.WriteFile(filepath.Join(p.dir, commonName+".ext"), []byte(ext), 0o600); err != nil {
		t.Fatal(err)
	}
	p.openssl(t, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", commonName+".key", "-out", commonName+".csr", "-subj", "/CN="+commonName)
	p.openssl(t, "x509", "-req", "-in", commonName+".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
		"-out", commonName+".crt", "-days", "2", "-extfile", commonName+".ext")
	return filepath.Join(p.dir, commonName+".crt"), filepath.Join(p.dir, commonName+".key")
}

// clientCert issues and loads a client certificate.
func (p *testPKI) clientCert(t *testing.T, commonName string) tls.Certificate {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.issue(t, commonName, true))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func (p *testPKI) openssl(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = p.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// replaceFile renames from over to, as certificate renewal tools do.
func replaceFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// startedAddrs reads the listener URLs of the process's "stompd started" line.
func startedAddrs(t *testing.T, p *stompdProcess) (websocketURL, stompURL, metricsURL string) {
	t.Helper()
	for line := range strings.SplitSeq(p.Log(), "\n") {
		var entry struct{ Msg, Websocket, Stomp, Metrics string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "stompd started" {
			return entry.Websocket, entry.Stomp, entry.Metrics
		}
	}
	t.Fatalf("no startup line in the log:\n%s", p.Log())
	return "", "", ""
}

// tlsStompd runs the binary with TLS from pki's server certificate (renamed to server.crt and
// server.key so that a test can replace them) and returns it with its STOMP-over-TLS address.
func tlsStompd(t *testing.T, pki *testPKI, extraArgs ...string) (p *stompdProcess, certPath, keyPath, stompAddr string) {
	t.Helper()
	cert, key := pki.issue(t, "server-1", false)
	certPath, keyPath = filepath.Join(pki.dir, "server.crt"), filepath.Join(pki.dir, "server.key")
	replaceFile(t, cert, certPath)
	replaceFile(t, key, keyPath)
	p = startStompd(t, append([]string{"-tls-cert", certPath, "-tls-key", keyPath, "-stocks=false"}, extraArgs...)...)
	wsURL, stompURL, _ := startedAddrs(t, p)
	if !strings.HasPrefix(wsURL, "wss://") || !strings.HasPrefix(stompURL, "tls://") {
		t.Fatalf("startup line shows %s and %s, want wss:// and tls://", wsURL, stompURL)
	}
	return p, certPath, keyPath, strings.TrimPrefix(stompURL, "tls://")
}

// dialStompTLS connects go-stomp over TLS and returns the connection and the server's certificate name.
func dialStompTLS(t *testing.T, addr string, cfg *tls.Config) (*stomp.Conn, string, error) {
	t.Helper()
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: waitTimeout}, "tcp", addr, cfg)
	if err != nil {
		return nil, "", err
	}
	_ = tc.SetDeadline(time.Now().Add(waitTimeout))
	conn, err := stomp.Connect(tc, noHeartBeats, stomp.ConnOpt.Host("/"), stomp.ConnOpt.Logger(quietLogger{}))
	if err != nil {
		tc.Close()
		return nil, "", err
	}
	_ = tc.SetDeadline(time.Time{})
	t.Cleanup(func() { _ = conn.Disconnect(); tc.Close() })
	return conn, tc.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

// dialStompWSS connects go-stomp over wss:// with an Origin header, when origin is not empty. The
// response is returned for the handshake's status.
func dialStompWSS(t *testing.T, url, origin string, cfg *tls.Config) (*stomp.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	transport := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(transport.CloseIdleConnections)
	opts := &websocket.DialOptions{Subprotocols: []string{"v12.stomp"}, HTTPClient: &http.Client{Transport: transport}}
	if origin != "" {
		opts.HTTPHeader = http.Header{"Origin": {origin}}
	}
	ws, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, resp, err
	}
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageText)
	conn, err := stomp.Connect(nc, noHeartBeats, stomp.ConnOpt.Host("/"), stomp.ConnOpt.Logger(quietLogger{}))
	if err != nil {
		nc.Close()
		return nil, resp, err
	}
	t.Cleanup(func() { _ = conn.Disconnect(); nc.Close() })
	return conn, resp, nil
}

// roundTrip subscribes conn to dest, sends a message there on the same connection and waits for it:
// one session's frames are handled in order, so the subscription is in place before the SEND.
func roundTrip(t *testing.T, conn *stomp.Conn, dest string) {
	t.Helper()
	sub, err := conn.Subscribe(dest, stomp.AckAuto)
	if err != nil {
		t.Fatalf("subscribe %s: %v", dest, err)
	}
	if err := conn.Send(dest, "text/plain", []byte("over tls")); err != nil {
		t.Fatalf("send %s: %v", dest, err)
	}
	select {
	case msg := <-sub.C:
		if msg.Err != nil || string(msg.Body) != "over tls" {
			t.Fatalf("%s: got %q, %v", dest, msg.Body, msg.Err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("%s: no message", dest)
	}
}

// TestTLSListeners runs the binary with a certificate made by openssl: STOMP over TLS and over wss://
// work, plain and TLS 1.1 clients are refused on both ports, Origins are checked, and the certificate
// is replaced on SIGHUP and on a file change while an open connection keeps working.
func TestTLSListeners(t *testing.T) {
	pki := newTestPKI(t, "stompd-test-ca")
	p, certPath, keyPath, stompAddr := tlsStompd(t, pki, "-allowed-origins", "https://app.example.com,*.trusted.example")
	wsURL, _, metricsURL := startedAddrs(t, p)
	wsURL = strings.Replace(wsURL, "localhost", "127.0.0.1", 1)
	client := &tls.Config{RootCAs: pki.pool}

	old, cn, err := dialStompTLS(t, stompAddr, client)
	if err != nil || cn != "server-1" {
		t.Fatalf("STOMP over TLS: %v (server %q)", err, cn)
	}

	t.Run("STOMP over TLS and wss", func(t *testing.T) {
		roundTrip(t, old, "/topic/tls")
		ws, _, err := dialStompWSS(t, wsURL, "", client)
		if err != nil {
			t.Fatalf("wss: %v", err)
		}
		roundTrip(t, ws, "/topic/wss")
	})

	t.Run("plain clients refused", func(t *testing.T) {
		nc, err := net.DialTimeout("tcp", stompAddr, waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(waitTimeout))
		if _, err := stomp.Connect(nc, noHeartBeats, stomp.ConnOpt.Logger(quietLogger{})); err == nil {
			t.Error("plain STOMP connected to the TLS port")
		}
		resp, err := http.Get("http://" + p.HTTPAddr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: %s, want 400", resp.Status)
		}
	})

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		old := &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
		for _, addr := range []string{stompAddr, p.HTTPAddr} {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitTimeout}, "tcp", addr, old)
			if err == nil {
				c.Close()
				t.Errorf("%s: TLS 1.1 handshake succeeded", addr)
			} else if !strings.Contains(err.Error(), "protocol version") {
				t.Errorf("%s: %v, want a protocol version alert", addr, err)
			}
		}
	})

	t.Run("origins", func(t *testing.T) {
		cases := []struct {
			origin string
			allow  bool
		}{
			{"", true},
			{"https://app.example.com", true},
			{"https://shop.trusted.example", true},
			{"http://app.example.com", false}, // the pattern names https
			{"https://evil.example.com", false},
		}
		refused := 0
		for _, tc := range cases {
			conn, resp, err := dialStompWSS(t, wsURL, tc.origin, client)
			if tc.allow {
				if err != nil {
					t.Errorf("Origin %q refused: %v", tc.origin, err)
					continue
				}
				roundTrip(t, conn, "/topic/origin")
				continue
			}
			refused++
			if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				status := ""
				if resp != nil {
					status = resp.Status
				}
				t.Errorf("Origin %q: %v (status %q), want 403", tc.origin, err, status)
			}
			// The refusal is logged after the 403 is written.
			waitFor(t, "a log line naming Origin "+tc.origin, func() bool {
				return strings.Contains(p.Log(), `"origin":"`+tc.origin+`"`)
			})
		}
		want := `stompd_handshake_failures_total{reason="origin"} ` + strconv.Itoa(refused)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: client}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(strings.Replace(metricsURL, "localhost", "127.0.0.1", 1))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	})

	t.Run("reload", func(t *testing.T) {
		serverName := func() string {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitTimeout}, "tcp", stompAddr, client)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			return c.ConnectionState().PeerCertificates[0].Subject.CommonName
		}
		cert, key := pki.issue(t, "server-2", false)
		replaceFile(t, key, keyPath)
		replaceFile(t, cert, certPath)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the certificate reloaded on SIGHUP", func() bool {
			return strings.Contains(p.Log(), `"msg":"tls certificate reloaded","trigger":"signal"`)
		})
		if got := serverName(); got != "server-2" {
			t.Fatalf("after SIGHUP the server shows %q, want server-2", got)
		}
		roundTrip(t, old, "/topic/after-sighup")

		cert, key = pki.issue(t, "server-3", false)
		replaceFile(t, key, keyPath)
		replaceFile(t, cert, certPath)
		waitFor(t, "the certificate reloaded on a file change", func() bool { return serverName() == "server-3" })
		// The new certificate may serve a moment before the reload's log line is written.
		waitFor(t, "the file-change reload logged", func() bool { return strings.Contains(p.Log(), `"trigger":"file change"`) })
		roundTrip(t, old, "/topic/after-change")
		ws, _, err := dialStompWSS(t, wsURL, "", client)
		if err != nil {
			t.Fatalf("wss after reload: %v", err)
		}
		roundTrip(t, ws, "/topic/wss-after-change")
	})
}

// TestMutualTLS requires client certificates: a client without one, or with one from another CA, is
// refused on both listeners; a client with one from the configured CA is served.
func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t, "stompd-test-ca")
	clients := newTestPKI(t, "stompd-test-client-ca")
	p, _, _, stompAddr := tlsStompd(t, pki, "-tls-client-ca", clients.CA)
	wsURL, _, _ := startedAddrs(t, p)
	wsURL = strings.Replace(wsURL, "localhost", "127.0.0.1", 1)
	good := clients.clientCert(t, "alice")
	stranger := pki.clientCert(t, "mallory")

	cases := []struct {
		name   string
		cfg    *tls.Config
		accept bool
	}{
		{"certificate from the client CA", &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{good}}, true},
		{"no certificate", &tls.Config{RootCAs: pki.pool}, false},
		{"certificate from another CA", &tls.Config{RootCAs: pki.pool,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger, nil }}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tcp, _, tcpErr := dialStompTLS(t, stompAddr, tc.cfg)
			ws, _, wsErr := dialStompWSS(t, wsURL, "", tc.cfg)
			if !tc.accept {
				if tcpErr == nil || wsErr == nil {
					t.Fatalf("served: STOMP over TLS error %v, wss error %v", tcpErr, wsErr)
				}
				if !strings.Contains(tcpErr.Error(), "remote error: tls:") {
					t.Errorf("STOMP over TLS: %v, want a TLS error", tcpErr)
				}
				return
			}
			if tcpErr != nil || wsErr != nil {
				t.Fatalf("refused: STOMP over TLS %v, wss %v", tcpErr, wsErr)
			}
			roundTrip(t, tcp, "/topic/mtls")
			roundTrip(t, ws, "/topic/mtls-ws")
		})
	}
}
