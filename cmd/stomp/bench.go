package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// Defaults of bench's flags.
const (
	defaultBenchSize      = 128
	defaultBenchDuration  = 10 * time.Second
	defaultBenchWarmup    = 2 * time.Second
	defaultBenchWindow    = 1000
	defaultLatencyRate    = 100
	defaultSubscribers    = 100
	defaultPublishers     = 50
	defaultPairs          = 50
	defaultProducers      = 4
	defaultConsumers      = 4
	defaultPrefetch       = 100
	defaultIdleConns      = 1000
	defaultIdleHold       = 10 * time.Second
	timeoutMargin         = 60 * time.Second
	idleTimeoutPerConnect = time.Millisecond // added to an idle run's default -timeout per connection
)

// benchConfig is a parsed bench command line.
type benchConfig struct {
	scenario   *benchScenario
	conn       connFlags
	size       int
	duration   time.Duration
	warmup     time.Duration
	timeout    time.Duration
	window     int
	destPrefix string
	pid        int
	json       bool
	rate       float64

	receiptEvery int  // a publisher asks for a RECEIPT on every Nth SEND and waits for it; 0 never
	persistent   bool // SENDs carry persistent:true

	subscribers int
	publishers  int
	pairs       int
	producers   int
	consumers   int
	prefetch    int

	connections int
	hold        time.Duration
	sourceIPs   int

	// receiverURLs, when set, are the brokers the subscribers and consumers connect to, in turn (the
	// nodes of a cluster); the publishers and producers use -url.
	receiverURLs string

	hooks benchHooks
}

// benchHooks let tests watch and slow down a run; nil hooks cost a nil check.
type benchHooks struct {
	started   func(*benchRun) // once every connection is set up, before the first message
	delivered func()          // on the receive path, after each message is counted
}

// benchScenario is one load shape.
type benchScenario struct {
	name    string
	summary string
	queue   bool     // messages go to competing consumers of one /queue/ destination
	flags   []string // scenario flags it takes besides those of every scenario
}

// benchScenarios are the scenarios, in the order the usage lists them.
var benchScenarios = []*benchScenario{
	{name: "fanout", summary: "1 publisher → -subscribers on one topic", flags: []string{"subscribers"}},
	{name: "fanin", summary: "-publishers → 1 subscriber on one topic", flags: []string{"publishers"}},
	{name: "pairs", summary: "-pairs topics, 1 publisher → 1 subscriber each", flags: []string{"pairs"}},
	{name: "queue", summary: "-producers → -consumers competing on one queue, client-individual acks", queue: true, flags: []string{"producers", "consumers", "prefetch"}},
	{name: "latency", summary: "1 publisher at -rate (default 100/s) → -subscribers; latency percentiles", flags: []string{"subscribers"}},
	{name: "idle", summary: "-connections, each subscribed once, held silent for -hold; broker memory per connection", flags: []string{"connections", "hold", "source-ips"}},
}

// scenarioFlags are the flags only some scenarios take.
var scenarioFlags = []string{"subscribers", "publishers", "pairs", "producers", "consumers", "prefetch", "connections", "hold", "source-ips"}

func runBench(ctx context.Context, con *console, args []string) error {
	cfg, err := parseBenchArgs(args, con)
	if err != nil {
		return err
	}
	return cfg.run(ctx, con)
}

// parseBenchArgs parses and checks a bench command line. Mistakes wrap errUsage.
func parseBenchArgs(args []string, con *console) (*benchConfig, error) {
	var names []string
	for _, s := range benchScenarios {
		names = append(names, fmt.Sprintf("  %-8s %s", s.name, s.summary))
	}
	fs := newFlagSet("bench", "SCENARIO [flags]",
		"Loads a broker and reports what it delivered: msg/s published and delivered, lost, duplicated\n"+
			"and out-of-order messages, end-to-end latency percentiles, and with -pid the broker's CPU\n"+
			"time and memory. It exits 0 only when nothing was lost or duplicated (or reordered on a\n"+
			"topic). Lost is what never arrived: after the publishers stop, the receivers wait as long\n"+
			"as messages keep arriving, until none has for "+drainQuiet.String()+" (at most "+drainLimit.String()+" in all).\n"+
			"Scenarios:\n\n"+strings.Join(names, "\n"))
	cfg := &benchConfig{}
	cf := &cfg.conn
	fs.StringVar(&cf.url, "url", defaultURL, "broker `URL`: tcp://, tcps://, ssl://, ws:// or wss:// (env STOMP_URL)")
	fs.StringVar(&cf.login, "login", "", "login `name` (env STOMP_LOGIN)")
	fs.StringVar(&cf.passcode, "passcode", "", "`passcode`; prefer env STOMP_PASSCODE, which other users cannot read from the process list")
	fs.StringVar(&cf.host, "host", defaultHost, "CONNECT host header, the virtual host on brokers that have them")
	fs.StringVar(&cf.tls.caFile, "ca", "", "PEM `file` of CA certificates to trust instead of the system's")
	fs.StringVar(&cf.tls.certFile, "cert", "", "PEM client certificate `file` (with -key)")
	fs.StringVar(&cf.tls.keyFile, "key", "", "PEM client key `file` (with -cert)")
	fs.BoolVar(&cf.tls.insecure, "insecure", false, "INSECURE: skip verification of the broker's certificate and name. For tests only")
	fs.IntVar(&cfg.size, "size", defaultBenchSize, fmt.Sprintf("message body `bytes` (at least %d, the stamp)", stampLen))
	fs.DurationVar(&cfg.duration, "duration", defaultBenchDuration, "length of the measured phase")
	fs.DurationVar(&cfg.warmup, "warmup", defaultBenchWarmup, "load before the measured phase, not measured")
	fs.DurationVar(&cfg.timeout, "timeout", 0, "bound on the whole run, exit 3 when exceeded; 0: duration+warmup+60s\n(idle: hold+warmup+60s+1ms per connection)")
	fs.IntVar(&cfg.window, "window", defaultBenchWindow, "flow control: most `messages` a publisher may be ahead of the slowest receiver of its messages;\n"+
		"fanin's publishers share it, so that their one subscriber never has more in flight")
	fs.StringVar(&cfg.destPrefix, "dest-prefix", "", "destination `prefix`, suffixed per run and pair (default /topic/bench, /queue/bench for queue)")
	fs.IntVar(&cfg.pid, "pid", 0, "broker process `id`: report its CPU seconds over the measured phase and its RSS, from /proc")
	fs.BoolVar(&cfg.json, "json", false, "print one JSON object at the end instead of the summary")
	fs.Float64Var(&cfg.rate, "rate", 0, "total publish `rate` in msg/s, shared by the publishers; 0: as fast as the window allows\n(latency: default 100)")
	fs.IntVar(&cfg.receiptEvery, "receipt-every", 0, "each publisher asks for a RECEIPT on every `N`th SEND and waits for it before going on\n(the broker's word that the messages were taken: stored, with a durable queue); 0: never")
	fs.BoolVar(&cfg.persistent, "persistent", false, "SENDs carry persistent:true (what RabbitMQ needs to store a /queue/ message)")
	fs.IntVar(&cfg.subscribers, "subscribers", defaultSubscribers, "fanout, latency: subscriber `connections`")
	fs.IntVar(&cfg.publishers, "publishers", defaultPublishers, "fanin: publisher `connections`")
	fs.IntVar(&cfg.pairs, "pairs", defaultPairs, "pairs: `topics`, each with its own publisher and subscriber")
	fs.IntVar(&cfg.producers, "producers", defaultProducers, "queue: producer `connections`")
	fs.IntVar(&cfg.consumers, "consumers", defaultConsumers, "queue: consumer `connections`")
	fs.IntVar(&cfg.prefetch, "prefetch", defaultPrefetch, "queue: unacknowledged `messages` a consumer may hold (prefetch-count)")
	fs.IntVar(&cfg.connections, "connections", defaultIdleConns, "idle: `connections` to hold")
	fs.DurationVar(&cfg.hold, "hold", defaultIdleHold, "idle: how long to hold them once all are connected (and warmed up)")
	fs.StringVar(&cfg.receiverURLs, "receiver-urls", "", "comma-separated broker `URLs` the subscribers and consumers connect to, in turn (the nodes\nof a cluster, with the publishers on -url); empty: -url for all")
	fs.IntVar(&cfg.sourceIPs, "source-ips", 1, "idle: spread connections over the source addresses 127.0.0.1 … 127.0.0.`N`,\nfor more than the ~28,000 one address can open to one port")
	pos, err := parseInterspersed(fs, args, con)
	if err != nil {
		return nil, err
	}
	if len(pos) != 1 {
		return nil, fmt.Errorf("%w: want one SCENARIO (%s), got %d arguments (usage: stomp bench SCENARIO [flags])", errUsage, scenarioNames(), len(pos))
	}
	i := slices.IndexFunc(benchScenarios, func(s *benchScenario) bool { return s.name == pos[0] })
	if i < 0 {
		return nil, fmt.Errorf("%w: unknown scenario %q (want %s)", errUsage, pos[0], scenarioNames())
	}
	cfg.scenario = benchScenarios[i]
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range scenarioFlags {
		if set[name] && !slices.Contains(cfg.scenario.flags, name) {
			return nil, fmt.Errorf("%w: -%s does not apply to %s", errUsage, name, cfg.scenario.name)
		}
	}
	if cfg.scenario.name == "latency" && !set["rate"] {
		cfg.rate = defaultLatencyRate
	}
	if cfg.destPrefix == "" {
		cfg.destPrefix = "/topic/bench"
		if cfg.scenario.queue {
			cfg.destPrefix = "/queue/bench"
		}
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.timeout == 0 {
		cfg.timeout = cfg.duration + cfg.warmup + timeoutMargin
		if cfg.scenario.name == "idle" {
			cfg.timeout = cfg.hold + cfg.warmup + timeoutMargin + time.Duration(cfg.connections)*idleTimeoutPerConnect
		}
	}
	cfg.conn.applyEnv(fs, con.lookupEnv)
	return cfg, nil
}

// check rejects values that make no sense, naming the flag.
func (cfg *benchConfig) check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
	}
	counts := []struct {
		name string
		v    int
	}{
		{"subscribers", cfg.subscribers}, {"publishers", cfg.publishers}, {"pairs", cfg.pairs},
		{"producers", cfg.producers}, {"consumers", cfg.consumers}, {"prefetch", cfg.prefetch},
		{"connections", cfg.connections}, {"window", cfg.window},
	}
	for _, c := range counts {
		if c.v < 1 {
			return bad("-%s must be at least 1", c.name)
		}
	}
	switch {
	case cfg.size < stampLen:
		return bad("-size must be at least %d bytes, the stamp every message carries", stampLen)
	case cfg.duration <= 0 || cfg.hold <= 0:
		return bad("-duration and -hold must be positive")
	case cfg.warmup < 0 || cfg.timeout < 0:
		return bad("-warmup and -timeout must not be negative")
	case cfg.rate < 0 || math.IsNaN(cfg.rate) || math.IsInf(cfg.rate, 0):
		return bad("-rate must be a non-negative number")
	case cfg.pid < 0:
		return bad("-pid must not be negative")
	case cfg.sourceIPs < 1 || cfg.sourceIPs > 254:
		return bad("-source-ips must be between 1 and 254")
	case cfg.publishers >= maxPublishers || cfg.pairs >= maxPublishers || cfg.producers >= maxPublishers:
		return bad("at most %d publishers", maxPublishers-1)
	}
	return nil
}

func scenarioNames() string {
	var names []string
	for _, s := range benchScenarios {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

// run carries out the run and prints its report; an incomplete run prints nothing but the error.
func (cfg *benchConfig) run(ctx context.Context, con *console) error {
	if cfg.pid != 0 {
		if _, err := procCPUSeconds(cfg.pid); err != nil {
			return fmt.Errorf("-pid %d: %w", cfg.pid, err)
		}
	}
	dialer, err := newBenchDialer(&cfg.conn, cfg.sourceIPs)
	if err != nil {
		return err
	}
	defer dialer.close()
	timeoutErr := fmt.Errorf("%w: the run did not finish within -timeout %s", errTimeout, cfg.timeout)
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.timeout, timeoutErr)
	defer cancel()

	run := newBenchRun(cfg, dialer)
	for _, u := range strings.Split(cfg.receiverURLs, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		cf := cfg.conn
		cf.url = u
		d, err := newBenchDialer(&cf, cfg.sourceIPs)
		if err != nil {
			return fmt.Errorf("-receiver-urls %s: %w", u, err)
		}
		defer d.close()
		run.receiverDialers = append(run.receiverDialers, d)
	}
	stopProgress := func() {}
	if isTerminal(con.stderr) {
		stopProgress = startProgress(con.stderr, run, progressInterval)
	}
	var rep *benchReport
	if cfg.scenario.name == "idle" {
		rep, err = run.idle(ctx)
	} else {
		rep, err = run.traffic(ctx)
	}
	stopProgress()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("interrupted")
		}
		return err
	}
	for _, note := range rep.notes {
		fmt.Fprintf(con.stderr, "stomp bench: note: %s\n", note)
	}
	if cfg.json {
		err = rep.writeJSON(con.stdout)
	} else {
		err = rep.writeSummary(con.stdout)
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return rep.verdict(cfg.scenario.queue)
}

// isTerminal reports whether w is a terminal, where a live progress line belongs.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
