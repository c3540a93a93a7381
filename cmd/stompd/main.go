// Command stompd is a STOMP 1.0–1.2 message broker for WebSocket and TCP clients.
//
// With no flags it keeps everything in memory and serves STOMP over WebSocket at ws://HOST:8080/ws and
// STOMP over TCP at HOST:61613. SIGINT or SIGTERM shuts it down gracefully: it stops accepting, sends
// every client an ERROR "server shutting down", flushes, closes and exits 0. Run stompd -h for flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/broker/chat"
	"github.com/stompd/stompd/broker/stocks"
	"github.com/stompd/stompd/cmd/stompd/web"
	"github.com/stompd/stompd/stompws"
)

// version is the release, set at build time with -ldflags "-X main.version=…"; otherwise the module
// version from the build information.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr, nil))
}

// run is the whole program: it serves until ctx ends, then shuts down. ready, if not nil, receives the
// bound addresses once listening (tests use it). It returns the exit code.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer, ready chan<- listenAddrs) int {
	cfg, err := parseConfig(args, lookupEnv, stdout)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "stompd: %v\n", err)
		return 2
	}
	logger := newLogger(cfg, stderr)
	ver := buildVersion()

	b := broker.New(cfg.brokerOptions(logger))
	srv := stompws.NewServer(b, cfg.serverOptions(logger, ver))
	if cfg.Chat {
		room := chat.New(b, cfg.chatOptions())
		defer room.Close()
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", srv)
	mux.Handle("/", web.Handler()) // the index, /stocks, /chat, /echo and their static files

	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		fmt.Fprintf(stderr, "stompd: listen on -http-addr: %v\n", err)
		return 1
	}
	var stompLn net.Listener
	if cfg.StompAddr != "" {
		if stompLn, err = net.Listen("tcp", cfg.StompAddr); err != nil {
			httpLn.Close()
			fmt.Fprintf(stderr, "stompd: listen on -stomp-addr: %v\n", err)
			return 1
		}
	}

	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	serveErr := make(chan error, 2)
	go func() { serveErr <- httpSrv.Serve(httpLn) }()
	addrs := listenAddrs{HTTP: httpLn.Addr().String()}
	if stompLn != nil {
		addrs.STOMP = stompLn.Addr().String()
		go func() { serveErr <- srv.ServeTCP(stompLn) }()
	}
	logger.Info("stompd started", "version", ver,
		"websocket", "ws://"+displayAddr(httpLn.Addr())+"/ws",
		"stomp", tcpURL(stompLn))
	if cfg.Stocks {
		feed := stocks.New(b, cfg.stocksOptions())
		feed.Start()
		defer feed.Stop()
	}
	if ready != nil {
		ready <- addrs
	}

	code := 0
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	case err := <-serveErr:
		logger.Error("listener failed", "error", err)
		code = 1
	}

	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Stop accepting HTTP first (new upgrades get refused), then end the STOMP sessions, which the HTTP
	// server does not track once upgraded.
	if err := httpSrv.Shutdown(sctx); err != nil {
		logger.Warn("http shutdown", "error", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("sessions cut off at shutdown timeout", "error", err)
	}
	logger.Info("stopped")
	return code
}

// listenAddrs are the addresses run bound, reported to tests.
type listenAddrs struct{ HTTP, STOMP string }

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// isTerminal reports whether f is a character device, as a terminal is.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// displayAddr shows a listener address the way a user would type it: an unspecified host becomes localhost.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func tcpURL(l net.Listener) string {
	if l == nil {
		return "disabled"
	}
	return "tcp://" + displayAddr(l.Addr())
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
