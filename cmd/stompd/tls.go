package main

// TLS for the listeners: one certificate (and, for mutual TLS, one client
// CA bundle) shared by the WebSocket, STOMP-over-TCP and, unless turned off,
// metrics listeners. The files are read again on SIGHUP and when they
// change on disk, so that a renewed certificate takes effect without a
// restart: every handshake asks certReloader for the current configuration,
// which a reload swaps atomically. Connections already open keep the
// session they negotiated; only new handshakes see the new certificate.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// tlsPollInterval is how often run checks the TLS files for changes. Renewal tools replace files a
// few times a year; a few seconds' delay costs nothing, and stat calls this rare cost nothing either.
const tlsPollInterval = 2 * time.Second

// errNoClientCAs is returned when the -tls-client-ca file holds no PEM certificate, which would
// otherwise refuse every client without saying why.
var errNoClientCAs = errors.New("no PEM certificate found")

// tlsFiles names the PEM files TLS is built from. ClientCA is empty unless clients must present a
// certificate (mutual TLS).
type tlsFiles struct {
	Cert, Key, ClientCA string
}

// paths lists the files that are set, in a fixed order.
func (f tlsFiles) paths() []string {
	paths := []string{f.Cert, f.Key}
	if f.ClientCA != "" {
		paths = append(paths, f.ClientCA)
	}
	return paths
}

// certReloader serves the current TLS configuration to every handshake and replaces it when the files
// are reloaded. Its methods are safe for concurrent use: handshakes read the configuration through an
// atomic pointer and never wait for a reload, and reloads are serialised by a mutex.
type certReloader struct {
	files  tlsFiles
	logger *slog.Logger

	current atomic.Pointer[tls.Config]

	mu    sync.Mutex  // held by a reload, so that two never interleave
	stamp []fileStamp // what the files looked like before the last load attempt; guarded by mu
}

// fileStamp is what changes when a file is rewritten or replaced.
type fileStamp struct {
	modTime time.Time
	size    int64
	err     bool // the file could not be read; its coming back is a change too
}

// newCertReloader loads files once and returns a reloader serving them. It fails, naming the file,
// when a file cannot be read or parsed or the key does not match the certificate.
func newCertReloader(files tlsFiles, logger *slog.Logger) (*certReloader, error) {
	r := &certReloader{files: files, logger: logger}
	r.stamp = stampFiles(files.paths())
	cfg, err := loadTLSConfig(files)
	if err != nil {
		return nil, err
	}
	r.current.Store(cfg)
	r.logLoaded("tls certificate loaded", cfg)
	return r, nil
}

// listenerConfig is the configuration to give tls.NewListener: every handshake takes the reloader's
// current configuration.
func (r *certReloader) listenerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.current.Load(), nil
		},
	}
}

// Reload reads the files again and, if they load, makes new handshakes use them; run calls it on
// SIGHUP. On failure it logs the error, keeps serving the previous certificate and returns the error.
func (r *certReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stamp = stampFiles(r.files.paths())
	return r.loadLocked("signal")
}

// ReloadIfChanged reloads as Reload does when a file's modification time or size differs from what it
// was before the previous load attempt; otherwise it does nothing and returns nil. A failed attempt is
// not retried until a file changes again, so a half-written pair is retried once the second file lands.
func (r *certReloader) ReloadIfChanged() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamp := stampFiles(r.files.paths())
	if equalStamps(stamp, r.stamp) {
		return nil
	}
	r.stamp = stamp
	return r.loadLocked("file change")
}

func (r *certReloader) loadLocked(trigger string) error {
	cfg, err := loadTLSConfig(r.files)
	if err != nil {
		r.logger.Error("tls reload failed; keeping the current certificate", "trigger", trigger, "error", err)
		return err
	}
	r.current.Store(cfg)
	r.logLoaded("tls certificate reloaded", cfg, "trigger", trigger)
	return nil
}

func (r *certReloader) logLoaded(msg string, cfg *tls.Config, attrs ...any) {
	leaf := cfg.Certificates[0].Leaf
	attrs = append(attrs, "cert", r.files.Cert, "subject", leaf.Subject.String(),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "client_auth", r.files.ClientCA != "")
	r.logger.Info(msg, attrs...)
}

// watch reloads on every value from hup and whenever the files change, checked every interval, until
// ctx ends. run owns the goroutine that runs it.
func (r *certReloader) watch(ctx context.Context, hup <-chan os.Signal, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = r.Reload() // logged; the old certificate stays
		case <-tick.C:
			_ = r.ReloadIfChanged()
		}
	}
}

// loadTLSConfig builds the per-handshake configuration from files: TLS 1.2 at least, the certificate,
// and with a client CA, a client certificate signed by it is required.
func loadTLSConfig(files tlsFiles) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		return nil, fmt.Errorf("tls certificate %s with key %s: %w", files.Cert, files.Key, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls certificate %s: %w", files.Cert, err)
		}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if files.ClientCA != "" {
		pem, err := os.ReadFile(files.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls client CA %s: %w", files.ClientCA, errNoClientCAs)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func stampFiles(paths []string) []fileStamp {
	stamps := make([]fileStamp, len(paths))
	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			stamps[i].err = true
			continue
		}
		stamps[i] = fileStamp{modTime: fi.ModTime(), size: fi.Size()}
	}
	return stamps
}

func equalStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].modTime.Equal(b[i].modTime) || a[i].size != b[i].size || a[i].err != b[i].err {
			return false
		}
	}
	return true
}
