// Command stompd is a STOMP 1.0–1.2 message broker for WebSocket and TCP clients.
//
// With no flags it keeps everything in memory and serves STOMP over WebSocket at ws://HOST:8080/ws,
// over SockJS at http://HOST:8080/stomp (the fallback for networks that block WebSocket), and over TCP
// at HOST:61613. SIGINT or SIGTERM shuts it down gracefully: it stops accepting, sends
// every client an ERROR "server shutting down", flushes, closes and exits 0. Run stompd -h for flags.
//
// With -tls-cert and -tls-key both listeners speak TLS only (wss://HOST:8080/ws, STOMP over TLS on
// 61613); SIGHUP, or a change to the files, reloads the certificate without dropping connections.
package main

import (
	"context"
	"crypto/tls"
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/broker/chat"
	"github.com/stompd/stompd/broker/natsengine"
	"github.com/stompd/stompd/broker/stocks"
	"github.com/stompd/stompd/cmd/stompd/web"
	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws"
	"github.com/stompd/stompd/stompws/admin"
	"github.com/stompd/stompd/stompws/frame"
	"github.com/stompd/stompd/transport"
)

// version and revision identify the build, set with -ldflags "-X main.version=… -X main.revision=…";
// without them the version comes from the module's build information and the revision from VCS
// stamping, when present.
var version, revision = "", ""

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
	if cfg.CheckConfig {
		if cfg.tlsOn() {
			if _, err := loadTLSConfig(cfg.tlsFiles()); err != nil {
				fmt.Fprintf(stderr, "stompd: %v\n", err)
				return 1
			}
		}
		if _, err := cfg.Auth.authenticator(nil); err != nil {
			fmt.Fprintf(stderr, "stompd: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "# mode: %s\n", cfg.storeMode())
		if err := printEffectiveConfig(stdout, cfg.flags, cfg.Sources, cfg.brokerOptions(nil, 0).Policies, cfg.Rules); err != nil {
			fmt.Fprintf(stderr, "stompd: %v\n", err)
			return 1
		}
		return 0
	}
	if cfg.HealthCheck != "" {
		return healthCheck(cfg.HealthCheck, stderr)
	}
	logger := newLogger(cfg, stderr)
	ver := buildVersion()
	memoryLimit, memorySource := cfg.MaxMemory.resolve(os.DirFS("/"))
	if memoryLimit > 0 {
		previous := debug.SetMemoryLimit(memoryLimit)
		defer debug.SetMemoryLimit(previous)
		logger.Info("memory limit", "bytes", memoryLimit, "from", memorySource)
	} else {
		logger.Info("no memory limit", "why", memorySource)
	}

	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: ver, Revision: buildRevision()})
	bopts := cfg.brokerOptions(logger, memoryLimit)
	store, err := cfg.startStore(logger, m, mostRetained(bopts.Policies))
	if err != nil {
		fmt.Fprintf(stderr, "stompd: %v\n", err)
		return 2
	}
	if store != nil {
		// Closed last (deferred first): after the sessions have ended and settled their deliveries.
		defer store.Close()
		bopts.Store, bopts.Retained, bopts.Streams, bopts.Durables = store, store, store, store
	}
	cluster, err := cfg.Cluster.joinCluster(logger, m)
	if err != nil {
		fmt.Fprintf(stderr, "stompd: %v\n", err)
		return 2
	}
	var shared *clusterShared
	if cluster != nil {
		// Closed after the sessions have ended (deferred before the server's shutdown runs).
		defer cluster.Close()
		shared = &clusterShared{}
		bopts.Backplane, bopts.Retained, bopts.Store, bopts.Durables, bopts.Streams = cluster, shared, shared, shared, shared
	}
	b := broker.New(bopts)
	if cluster != nil {
		cluster.SetReceiver(b.PublishRemote)
		if err := cluster.ListenReplies(b.NodeID()); err != nil {
			fmt.Fprintf(stderr, "stompd: %v\n", err)
			return 2
		}
		b.WatchRetaining()
	}
	m.ObserveQueueDepth(cfg.metricsQueues(), b.QueueDepth)
	opts := cfg.serverOptions(logger, ver, m)
	opts.MaxMemory = memoryLimit
	if opts.Authenticator, err = cfg.Auth.authenticator(logger); err != nil {
		fmt.Fprintf(stderr, "stompd: %v\n", err)
		return 1
	}
	opts.Policy = cfg.policy
	srv := stompws.NewServer(b, opts)
	observeBroker(m, b, srv)
	if cfg.Chat {
		chatOpts := cfg.chatOptions()
		if cluster != nil {
			chatOpts.Peers = chatPeers{cluster}
		}
		room := chat.New(b, chatOpts)
		defer room.Close()
		if cluster != nil {
			joinChatToCluster(cluster, room)
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/ws", srv)
	if cfg.SockJS {
		sockjs := srv.SockJSHandler("/stomp")
		mux.Handle("/stomp", sockjs)
		mux.Handle("/stomp/", sockjs)
	}
	mux.Handle("/", web.Handler()) // the index, /stocks, /chat, /echo and their static files
	adminMux := mux
	if cfg.MetricsAddr != "" {
		adminMux = http.NewServeMux()
	}
	var storeHealth func() string
	switch {
	case store != nil:
		storeHealth = store.Health
	case shared != nil:
		storeHealth = shared.health
	}
	var feed *stocks.Feed
	if cfg.Stocks {
		feed = stocks.New(b, cfg.stocksOptions())
	}
	var notReady func() string
	if cluster != nil {
		startup := &clusterStartup{cluster: cluster, b: b, shared: shared, feed: feed, log: logger,
			cfg: natsengine.Config{Replicas: cfg.Cluster.Replicas, AckWait: cfg.Cluster.AckWait,
				RetainedPerDestination: mostRetained(bopts.Policies), Logger: logger}}
		startup.start()
		defer startup.stop() // before the cluster closes: the feed goes to another node at once
		notReady = func() string {
			if p := clusterProblem(cluster, cfg.Cluster.ReadyGrace); p != "" {
				return p
			}
			return startup.problem()
		}
	}
	adminRoutes(adminMux, reg, srv, health{store: storeHealth, notReady: notReady}, cfg.Pprof)
	if cfg.Admin {
		api := admin.New(admin.Config{Broker: b, Server: srv, Authenticator: opts.Authenticator, Policy: opts.Policy,
			Node: cfg.Cluster.nodeName(), Version: ver, Mode: cfg.modeName(), ModeDetail: cfg.storeMode(), MemoryLimit: memoryLimit,
			MemoryHeld: func() int64 {
				st := b.Stats()
				return st.QueuedBytes + st.UnackedBytes + st.HeldBytes + st.RetainedBytes + st.StreamBytes + srv.OutboundBytes() + srv.TransactionBytes()
			},
			Limits: frame.Limits{MaxFrameBytes: int(cfg.MaxFrameSize), MaxHeaders: cfg.MaxHeaders, MaxHeaderBytes: int(cfg.MaxHeaderLength)},
			Logger: logger})
		defer api.Close()
		if cluster != nil {
			shareFigures(cluster, api)
		}
		adminMux.Handle("/api/", api)
		// The console, beside the API it calls, by the same access rules; on a separate admin address
		// it brings its static files along.
		site := web.Handler()
		adminMux.Handle("/admin", api.Gate(site))
		if adminMux != mux {
			adminMux.Handle("/static/", site)
		}
	}
	if !cfg.Admin || adminMux != mux {
		mux.Handle("/admin", http.NotFoundHandler()) // the pages' handler would serve it otherwise
	}

	var listeners listenerSet
	defer listeners.closeAll()
	if cfg.tlsOn() {
		certs, err := newCertReloader(cfg.tlsFiles(), logger)
		if err != nil {
			fmt.Fprintf(stderr, "stompd: %v\n", err)
			return 1
		}
		listeners.tls = certs.listenerConfig()
		// SIGHUP reloads the certificate only while TLS is on; without TLS it keeps its default
		// meaning, ending the process, as before.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		watchCtx, stopWatch := context.WithCancel(context.Background())
		watching := make(chan struct{})
		go func() {
			defer close(watching)
			certs.watch(watchCtx, hup, tlsPollInterval)
		}()
		defer func() { stopWatch(); <-watching }()
	}
	httpLn, err := listeners.listen("-http-addr", cfg.HTTPAddr, cfg.tlsOn())
	if err != nil {
		fmt.Fprintf(stderr, "stompd: %v\n", err)
		return 1
	}
	stompLn, err := listeners.listen("-stomp-addr", cfg.StompAddr, cfg.tlsOn())
	if err != nil {
		fmt.Fprintf(stderr, "stompd: %v\n", err)
		return 1
	}
	adminTLS := cfg.tlsOn() && cfg.MetricsTLS
	adminLn, err := listeners.listen("-metrics-addr", cfg.MetricsAddr, adminTLS)
	if err != nil {
		fmt.Fprintf(stderr, "stompd: %v\n", err)
		return 1
	}
	if adminLn == nil {
		adminTLS = cfg.tlsOn()
	}

	errorLog := slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	serveErr := make(chan error, 3)
	var servers []*http.Server
	serveHTTP := func(l net.Listener, h http.Handler) {
		hs := &http.Server{Handler: h, ReadHeaderTimeout: cfg.HeaderTimeout, IdleTimeout: cfg.HeaderTimeout, ErrorLog: errorLog}
		servers = append(servers, hs)
		go func() { serveErr <- hs.Serve(l) }()
	}
	serveHTTP(httpLn, mux)
	if adminLn != nil {
		serveHTTP(adminLn, adminMux)
	}
	if stompLn != nil {
		go func() { serveErr <- srv.ServeTCP(stompLn) }()
	}
	addrs := listenAddrs{HTTP: httpLn.Addr().String(), STOMP: addrOf(stompLn), Metrics: addrOf(adminLn)}
	logger.Info("stompd started", "version", ver,
		"websocket", scheme("ws", cfg.tlsOn())+displayAddr(httpLn.Addr())+"/ws",
		"stomp", stompURL(stompLn, cfg.tlsOn()),
		"sockjs", sockjsURL(cfg, httpLn),
		"mode", cfg.storeMode(),
		"metrics", scheme("http", adminTLS)+displayAddr(orDefault(adminLn, httpLn).Addr())+"/metrics",
		"tls", cfg.tlsOn(), "client_certificates", cfg.TLSClientCA != "",
		"allowed_origins", cfg.originPatterns())
	if feed != nil && cluster == nil {
		// In a cluster, the one node holding the feed's lease runs it (clusterStartup).
		feed.Start()
		defer feed.Stop()
	}
	if ready != nil {
		ready <- addrs
	}

	code := 0
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "drain_delay", cfg.DrainDelay.String(), "timeout", cfg.ShutdownTimeout.String())
	case err := <-serveErr:
		logger.Error("listener failed", "error", err)
		code = 1
	}

	// Readiness goes false and new connections are refused (WebSocket: 503 with Retry-After) while the
	// sessions go on for the drain delay, so that load balancers move new clients elsewhere first.
	srv.StopAccepting()
	if cfg.DrainDelay > 0 && code == 0 {
		time.Sleep(cfg.DrainDelay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("sessions cut off at shutdown timeout", "error", err)
	}
	for _, hs := range servers {
		if err := hs.Shutdown(sctx); err != nil {
			logger.Warn("http shutdown", "error", err)
		}
	}
	logger.Info("stopped")
	return code
}

// observeBroker lets the metrics read the broker's state, the bytes queued on connections, and how
// many connections are parked, at scrape time.
func observeBroker(m *metrics.Metrics, b *broker.Broker, srv *stompws.Server) {
	m.ObserveBroker(func() metrics.BrokerStats {
		st := brokerStats(b.Stats())
		st.HeldBytes[metrics.HeldOutbound] = srv.OutboundBytes()
		st.HeldBytes[metrics.HeldTransactions] = srv.TransactionBytes()
		return st
	})
	m.ObserveParkedConnections(transport.ParkedReaders)
}

// listenerSet opens the listeners run needs and closes them all if run fails half-way.
type listenerSet struct {
	open []net.Listener
	tls  *tls.Config // for the listeners opened with TLS; nil while TLS is off
}

// listen opens addr for the flag named flagName, speaking TLS only when useTLS is set; an empty addr
// means the listener is off (nil, nil).
func (ls *listenerSet) listen(flagName, addr string, useTLS bool) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", flagName, err)
	}
	ls.open = append(ls.open, l)
	if useTLS {
		l = tls.NewListener(l, ls.tls)
	}
	return l, nil
}

func (ls *listenerSet) closeAll() {
	for _, l := range ls.open {
		_ = l.Close()
	}
}

// scheme is base:// or, over TLS, bases:// (ws → wss, http → https).
func scheme(base string, secure bool) string {
	if secure {
		return base + "s://"
	}
	return base + "://"
}

func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

func orDefault(l, def net.Listener) net.Listener {
	if l == nil {
		return def
	}
	return l
}

// listenAddrs are the addresses run bound, reported to tests.
type listenAddrs struct{ HTTP, STOMP, Metrics string }

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

// stompURL shows the STOMP-over-TCP listener as tcp://host:port, or tls://host:port over TLS.
func stompURL(l net.Listener, secure bool) string {
	if l == nil {
		return "disabled"
	}
	if secure {
		return "tls://" + displayAddr(l.Addr())
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

func buildRevision() string {
	if revision != "" {
		return revision
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				return kv.Value
			}
		}
	}
	return ""
}

// sockjsURL is where STOMP over SockJS is served, for the start-up line; empty with -sockjs=false.
func sockjsURL(cfg *config, httpLn net.Listener) string {
	if !cfg.SockJS {
		return ""
	}
	return scheme("http", cfg.tlsOn()) + displayAddr(httpLn.Addr()) + "/stomp"
}
