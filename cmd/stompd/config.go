package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/broker/chat"
	"github.com/stompd/stompd/broker/natsengine"
	"github.com/stompd/stompd/broker/stocks"
	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws"
	"github.com/stompd/stompd/stompws/auth"
	"github.com/stompd/stompd/stompws/frame"
)

// envPrefix prefixes the environment variable of every flag: -max-frame-size is STOMPD_MAX_FRAME_SIZE.
const envPrefix = "STOMPD_"

// config is everything the command line and environment can set.
type config struct {
	HTTPAddr        string
	StompAddr       string
	MetricsAddr     string
	MetricsQueues   string
	HealthCheck     string
	DrainDelay      time.Duration
	HeaderTimeout   time.Duration
	SockJS          bool
	DataDir         string
	Cluster         clusterSettings
	DataSync        dataSync
	MaxStoreBytes   byteSize
	Pprof           bool
	Admin           bool
	LogLevel        slog.Level
	LogFormat       string
	ShutdownTimeout time.Duration

	TLSCert        string
	TLSKey         string
	TLSClientCA    string
	MetricsTLS     bool
	AllowedOrigins string
	Auth           authSettings

	MaxFrameSize                 byteSize
	MaxHeaders                   int
	MaxHeaderLength              byteSize
	MaxSubscriptions             int
	MaxTransactions              int
	MaxTxFrames                  int
	MaxTxBytes                   byteSize
	MaxQueueDepth                int
	MaxQueueBytes                byteSize
	MaxRetainedBytes             byteSize
	MaxDestinations              int
	MaxDestinationsPerConnection int
	MaxMemory                    maxMemory
	MemoryHoldTimeout            time.Duration
	MaxOutboundBytes             byteSize
	WriteTimeout                 time.Duration

	ConnectTimeout      time.Duration
	MaxConnections      int
	MaxConnectionsPerIP int
	AcceptRate          float64
	AcceptBurst         int
	SendRate            float64
	SendBurst           int
	SendBytesRate       byteSize
	SendBytesBurst      byteSize
	MaxUnacked          int

	HeartBeat      heartBeat
	HeartBeatMin   time.Duration
	HeartBeatMax   time.Duration
	HeartBeatGrace float64

	Stocks            bool
	StocksSymbols     symbolList
	StocksMinInterval time.Duration
	StocksMaxInterval time.Duration
	Chat              bool
	ChatHistory       int
	ChatMaxLength     int

	ConfigFile  string
	CheckConfig bool
	// Policies are the config file's destination policies, in file order.
	Policies []broker.DestinationPolicy
	// Rules are the config file's authorization rules; none means the default rules.
	Rules []auth.Rule
	// Sources says where each flag's value came from, for -check-config.
	Sources map[string]string
	flags   *flag.FlagSet
	policy  *auth.Policy // Rules, or the default rules, checked by validate
}

// errHelp is returned by parseConfig when -h was asked for; the usage has been printed.
var errHelp = errors.New("help requested")

// parseConfig reads flags from args with environment fallbacks from lookupEnv. Precedence: a flag on
// the command line, then its STOMPD_ variable, then the default. Usage goes to usageOut on -h.
func parseConfig(args []string, lookupEnv func(string) (string, bool), usageOut io.Writer) (*config, error) {
	c := &config{
		LogLevel:         slog.LevelInfo,
		MaxFrameSize:     4 << 20,
		MaxHeaderLength:  100 << 10,
		MaxOutboundBytes: stompws.DefaultMaxQueuedBytes,
		MaxQueueBytes:    broker.DefaultMaxQueueBytes,
		MaxRetainedBytes: broker.DefaultMaxRetainedBytes,
		MaxTxBytes:       stompws.DefaultMaxTxBytes,
		DataSync:         dataSync{interval: natsengine.DefaultSyncInterval},
		MaxMemory:        maxMemory{auto: true},
		HeartBeat:        heartBeat{send: 10 * time.Second, receive: 10 * time.Second}, // both on: follow the client
		StocksSymbols:    symbolList(stocks.DefaultSymbols),
	}
	fs := flag.NewFlagSet("stompd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.HTTPAddr, "http-addr", ":8080", "HTTP listen `address`; STOMP over WebSocket is served at /ws on it")
	fs.StringVar(&c.StompAddr, "stomp-addr", ":61613", "STOMP over TCP listen `address`; empty disables TCP")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "separate listen `address` for /metrics, /healthz and /readyz; empty serves them on -http-addr")
	fs.StringVar(&c.MetricsQueues, "metrics-queues", "", "comma-separated `queues` (/queue/NAME) whose depth is exported one by one as stompd_queue_depth")
	fs.StringVar(&c.HealthCheck, "healthcheck", "", "GET this `URL` and exit 0 if it answers 200 (for container health checks), instead of serving")
	fs.DurationVar(&c.DrainDelay, "drain-delay", 0, "on SIGINT/SIGTERM, how long to refuse new connections (readiness false) before telling clients to go")
	fs.StringVar(&c.DataDir, "data-dir", "", "`directory` where /queue/ messages are stored (an embedded NATS JetStream server, no port opened), so that they survive restarts; empty keeps them in memory")
	fs.Var(&c.DataSync, "data-sync", "with -data-dir, `always` flushes every stored message to the disk before its RECEIPT (a power loss loses nothing acknowledged), or an interval at which stored messages are flushed (a process crash loses nothing either way)")
	fs.Var(&c.MaxStoreBytes, "max-store-bytes", "with -data-dir, most `bytes` the stored messages may take on disk; a SEND past it gets an ERROR; 0: no bound but the disk")
	c.Cluster.register(fs)
	fs.BoolVar(&c.SockJS, "sockjs", true, "serve STOMP over SockJS at /stomp on -http-addr (websocket, xhr-streaming, xhr-polling and eventsource transports), the fallback for clients whose network blocks WebSocket")
	fs.BoolVar(&c.Admin, "admin", true, "serve the management API at /api/ beside /metrics (on -metrics-addr when set): users with the\nadmin role, or, with authentication off, clients on the loopback interface only")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve Go's runtime profiles under /debug/pprof/ beside /metrics (on -metrics-addr when set); keep that address private")
	fs.DurationVar(&c.HeaderTimeout, "http-header-timeout", 10*time.Second, "close an HTTP connection whose request line and headers have not all arrived this long after it opened (slowloris defence); also bounds an idle keep-alive connection's wait for its next request")
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "log `level`: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "auto", "log `format`: text, json, or auto (text on a terminal, else json)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long connected clients get to receive the shutdown ERROR before they are cut off")

	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate `file` (chain first to last); with -tls-key, -http-addr and -stomp-addr speak TLS only (wss://, STOMP over TLS). Reloaded on SIGHUP and when the file changes")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key `file` for -tls-cert")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", "", "PEM `file` of CA certificates; with it, every TLS client must present a certificate they signed (mutual TLS)")
	fs.BoolVar(&c.MetricsTLS, "metrics-tls", true, "with -tls-cert and a -metrics-addr, serve /metrics, /healthz and /readyz over TLS too; false keeps them plain HTTP")
	c.Auth.register(fs)
	fs.StringVar(&c.AllowedOrigins, "allowed-origins", "", "comma-separated browser Origin `patterns` allowed besides the server's own host, e.g. https://app.example.com,https://*.example.com; a pattern without :// matches the host alone. Clients sending no Origin are always allowed")

	fs.Var(&c.MaxFrameSize, "max-frame-size", "largest inbound frame (command, headers and body), `bytes` (suffixes KiB, MiB); the WebSocket read limit follows it")
	fs.IntVar(&c.MaxHeaders, "max-headers", 1000, "most header lines in one frame")
	fs.Var(&c.MaxHeaderLength, "max-header-length", "longest header line, `bytes` (suffixes KiB, MiB)")
	fs.IntVar(&c.MaxSubscriptions, "max-subscriptions", stompws.DefaultMaxSubscriptions, "most subscriptions per connection")
	fs.IntVar(&c.MaxTransactions, "max-transactions", stompws.DefaultMaxTransactions, "most open transactions per connection")
	fs.IntVar(&c.MaxTxFrames, "max-tx-frames", stompws.DefaultMaxTxFrames, "most SEND/ACK/NACK frames in one transaction")
	fs.Var(&c.MaxTxBytes, "max-tx-bytes", "most `bytes` of SENDs (body, destination and headers) one connection's open transactions hold until COMMIT")
	fs.IntVar(&c.MaxQueueDepth, "max-queue-depth", 100000, "most ready messages held per /queue/ destination; a SEND beyond it gets an ERROR")
	fs.IntVar(&c.MaxDestinations, "max-destinations", broker.DefaultMaxDestinations, "most destinations that hold state: queues, temporary reply queues and topics that retain\nmessages; a frame that would create one more gets an ERROR. 0: no bound")
	fs.IntVar(&c.MaxDestinationsPerConnection, "max-destinations-per-connection", stompws.DefaultMaxDestinationsPerSession, "most destinations one connection may create over its life (queues, temporary reply\nqueues, retaining topics); one more gets an ERROR. 0: no bound")
	fs.Var(&c.MaxMemory, "max-memory", "memory the Go runtime keeps the process within, `bytes` (suffixes KiB, MiB, GiB): its garbage\ncollector works harder as the heap nears it. auto: half of the cgroup limit, else of physical\nmemory; 0: no limit")
	fs.DurationVar(&c.MemoryHoldTimeout, "memory-hold-timeout", stompws.DefaultMemoryHoldTimeout, "how long a SEND is held back while memory is over the high watermark before it is\nrefused with an ERROR")
	fs.Var(&c.MaxRetainedBytes, "max-retained-bytes", "most `bytes` of messages all last-value and history topics retain together, and at most a quarter of\n-max-memory; a SEND whose retention would go past it gets an ERROR; 0: no bound")
	fs.Var(&c.MaxQueueBytes, "max-queue-bytes", "most `bytes` of ready messages (body, destination and headers) held per /queue/ destination;\na SEND beyond it gets an ERROR")
	fs.Var(&c.MaxOutboundBytes, "max-outbound-bytes", "outbound queue per connection, `bytes` (suffixes KiB, MiB); a topic subscriber over it is a slow consumer")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", stompws.DefaultWriteTimeout, "close a connection whose socket write is stuck this long")

	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", stompws.DefaultConnectTimeout, "close a connection that has not sent CONNECT this long after the TCP accept or WebSocket upgrade, with ERROR \"connect timeout\"; 0 disables it")
	fs.IntVar(&c.MaxConnections, "max-connections", stompws.DefaultMaxConnections, "most connections served at once; over it WebSocket upgrades get 503 with Retry-After and TCP connections an ERROR and close; 0 for no bound")
	fs.IntVar(&c.MaxConnectionsPerIP, "max-connections-per-ip", 0, "most connections served at once from one remote IP (the socket's peer, not X-Forwarded-For), answered as -max-connections; 0 for no bound")
	fs.Float64Var(&c.AcceptRate, "accept-rate", 0, "most new `connections` per second, a token bucket shared by WebSocket and TCP; over it WebSocket upgrades get 503 with Retry-After and TCP connections an ERROR and close; 0 disables it")
	fs.IntVar(&c.AcceptBurst, "accept-burst", 0, "connections -accept-rate lets in at once after a quiet spell; 0 for one second's worth")
	fs.Float64Var(&c.SendRate, "send-rate", 0, "most SEND `frames` per second per connection, a token bucket; over it the client gets ERROR \"rate limit exceeded\" and is closed; 0 disables it")
	fs.IntVar(&c.SendBurst, "send-burst", 0, "SEND frames -send-rate lets through at once; 0 for one second's worth")
	fs.Var(&c.SendBytesRate, "send-bytes-rate", "most SEND body `bytes` per second per connection (suffixes KiB, MiB), a token bucket; over it the client gets ERROR \"rate limit exceeded\" and is closed; 0 disables it")
	fs.Var(&c.SendBytesBurst, "send-bytes-burst", "SEND body `bytes` -send-bytes-rate lets through at once; 0 for one second's worth, never less than -max-frame-size")
	fs.IntVar(&c.MaxUnacked, "max-unacked", stompws.DefaultMaxUnacked, "most messages one connection may hold unacknowledged across its client-ack subscriptions; queues hold further messages back, topics treat the subscriber as slow; 0 for no bound")

	fs.Var(&c.HeartBeat, "heartbeat", "`send,receive`: 0 declines a direction of heart-beats; any other value lets it follow the\nclient, which sets the rate within -heartbeat-min and -heartbeat-max (earlier releases read\nthe values as the server's rates, in milliseconds)")
	fs.DurationVar(&c.HeartBeatMin, "heartbeat-min", stompws.DefaultHeartBeatMin, "never send or expect heart-beats more often than this")
	fs.DurationVar(&c.HeartBeatMax, "heartbeat-max", stompws.DefaultHeartBeatMax, "never stay silent longer than this when heart-beats are on")
	fs.Float64Var(&c.HeartBeatGrace, "heartbeat-grace", stompws.DefaultHeartBeatGrace, "close a client silent for this many negotiated intervals (at least 1)")

	fs.BoolVar(&c.Stocks, "stocks", true, "run the built-in stock feed on /topic/stocks and /topic/stocks.SYMBOL")
	fs.Var(&c.StocksSymbols, "stocks-symbols", "the feed's `symbols` and start prices, NAME=PRICE,...")
	fs.DurationVar(&c.StocksMinInterval, "stocks-min-interval", stocks.DefaultMinInterval, "shortest random interval between ticks")
	fs.DurationVar(&c.StocksMaxInterval, "stocks-max-interval", stocks.DefaultMaxInterval, "longest random interval between ticks")
	fs.BoolVar(&c.Chat, "chat", true, "run the built-in chat room: SEND to /app/chat, messages on /topic/chat")
	fs.IntVar(&c.ChatHistory, "chat-history", chat.DefaultHistory, "chat messages kept for newcomers (0 for none)")
	fs.IntVar(&c.ChatMaxLength, "chat-max-length", chat.DefaultMaxLength, "longest chat message, in characters")

	fs.StringVar(&c.ConfigFile, "config", "", "YAML config `file`: flag names as keys, plus destination policies; the environment and flags override it")
	fs.BoolVar(&c.CheckConfig, "check-config", false, "validate the configuration, print it with where each value came from, and exit")

	fs.Usage = func() { printUsage(usageOut, fs) }

	sections, sources, err := parseSettings(fs, args, lookupEnv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return nil, errHelp
		}
		return nil, err
	}
	c.Policies, c.Rules, c.Sources, c.flags = sections.Policies, sections.Rules, sources, fs
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.validate()
}

// validate rejects values that parse but make no sense, naming the flag.
func (c *config) validate() error {
	if err := c.Cluster.validate(c.DataDir); err != nil {
		return err
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		return fmt.Errorf("invalid value %q for flag -log-format: want text, json or auto", c.LogFormat)
	}
	positive := []struct {
		name  string
		value int64
	}{
		{"max-frame-size", int64(c.MaxFrameSize)}, {"max-headers", int64(c.MaxHeaders)},
		{"max-header-length", int64(c.MaxHeaderLength)}, {"max-subscriptions", int64(c.MaxSubscriptions)},
		{"max-transactions", int64(c.MaxTransactions)}, {"max-tx-frames", int64(c.MaxTxFrames)},
		{"max-tx-bytes", int64(c.MaxTxBytes)},
		{"max-queue-depth", int64(c.MaxQueueDepth)}, {"max-queue-bytes", int64(c.MaxQueueBytes)},
		{"max-outbound-bytes", int64(c.MaxOutboundBytes)},
		{"write-timeout", int64(c.WriteTimeout)}, {"memory-hold-timeout", int64(c.MemoryHoldTimeout)}, {"shutdown-timeout", int64(c.ShutdownTimeout)},
		{"heartbeat-min", int64(c.HeartBeatMin)}, {"heartbeat-max", int64(c.HeartBeatMax)},
	}
	for _, q := range c.metricsQueues() {
		if !strings.HasPrefix(q, "/queue/") || len(q) == len("/queue/") {
			return fmt.Errorf("invalid value %q for flag -metrics-queues: want /queue/NAME destinations", q)
		}
	}
	nonNegative := []struct {
		name  string
		value float64
	}{
		{"connect-timeout", float64(c.ConnectTimeout)}, {"max-connections", float64(c.MaxConnections)},
		{"max-connections-per-ip", float64(c.MaxConnectionsPerIP)}, {"accept-rate", c.AcceptRate},
		{"accept-burst", float64(c.AcceptBurst)}, {"send-rate", c.SendRate}, {"send-burst", float64(c.SendBurst)},
		{"max-unacked", float64(c.MaxUnacked)}, {"max-destinations", float64(c.MaxDestinations)},
		{"max-destinations-per-connection", float64(c.MaxDestinationsPerConnection)},
	}
	for _, p := range nonNegative {
		if p.value < 0 || math.IsNaN(p.value) || math.IsInf(p.value, 0) {
			return fmt.Errorf("invalid value for flag -%s: must be a finite number, not negative", p.name)
		}
	}
	if c.Auth.JWTLeeway < 0 || c.Auth.FailureDelay < 0 {
		return errors.New("invalid value for flag -jwt-leeway or -auth-failure-delay: must not be negative")
	}
	var err error
	if c.policy, err = policyFor(c.Rules); err != nil {
		return err
	}
	if c.HeaderTimeout <= 0 {
		return errors.New("invalid value for flag -http-header-timeout: must be positive")
	}
	if c.DrainDelay < 0 {
		return errors.New("invalid value for flag -drain-delay: must not be negative")
	}
	for _, p := range positive {
		if p.value <= 0 {
			return fmt.Errorf("invalid value for flag -%s: must be positive", p.name)
		}
	}
	if c.HeartBeatMin > c.HeartBeatMax {
		return fmt.Errorf("invalid value for flag -heartbeat-min: %s is above -heartbeat-max %s", c.HeartBeatMin, c.HeartBeatMax)
	}
	if c.StocksMinInterval <= 0 || c.StocksMaxInterval < c.StocksMinInterval {
		return fmt.Errorf("invalid value for flag -stocks-max-interval: %s must be at least -stocks-min-interval %s and positive", c.StocksMaxInterval, c.StocksMinInterval)
	}
	if c.ChatHistory < 0 || c.ChatMaxLength <= 0 {
		return errors.New("invalid value for flag -chat-history or -chat-max-length: must not be negative, and the length positive")
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	for _, p := range c.originPatterns() {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("invalid pattern %q in flag -allowed-origins: %v", p, err)
		}
	}
	if c.HeartBeatGrace < 1 {
		return fmt.Errorf("invalid value %v for flag -heartbeat-grace: must be at least 1", c.HeartBeatGrace)
	}
	return nil
}

// serverOptions maps the configuration onto the STOMP server's options.
func (c *config) serverOptions(logger *slog.Logger, version string, m *metrics.Metrics) stompws.Options {
	connectTimeout, maxConns := c.ConnectTimeout, c.MaxConnections
	if connectTimeout == 0 {
		connectTimeout = -1
	}
	if maxConns == 0 {
		maxConns = -1
	}
	authDelay := c.Auth.FailureDelay
	if authDelay == 0 {
		authDelay = -1
	}
	maxUnacked, perConnection := c.MaxUnacked, c.MaxDestinationsPerConnection
	if perConnection == 0 {
		perConnection = -1 // the flag's 0 is "no bound"; the server's is "default"
	}
	if maxUnacked == 0 {
		maxUnacked = -1
	}
	return stompws.Options{
		Limits: frame.Limits{
			MaxFrameBytes:  int(c.MaxFrameSize),
			MaxHeaders:     c.MaxHeaders,
			MaxHeaderBytes: int(c.MaxHeaderLength),
		},
		MaxSubscriptions:          c.MaxSubscriptions,
		MaxTransactions:           c.MaxTransactions,
		MaxTxFrames:               c.MaxTxFrames,
		MaxTxBytes:                int(c.MaxTxBytes),
		MaxQueuedBytes:            int(c.MaxOutboundBytes),
		WriteTimeout:              c.WriteTimeout,
		NoHeartBeatSend:           c.HeartBeat.send == 0,
		NoHeartBeatReceive:        c.HeartBeat.receive == 0,
		HeartBeatMin:              c.HeartBeatMin,
		HeartBeatMax:              c.HeartBeatMax,
		HeartBeatGrace:            c.HeartBeatGrace,
		ConnectTimeout:            connectTimeout,
		MaxConnections:            maxConns,
		MaxConnectionsPerIP:       c.MaxConnectionsPerIP,
		AcceptRate:                c.AcceptRate,
		AcceptBurst:               c.AcceptBurst,
		SendRate:                  c.SendRate,
		SendBurst:                 c.SendBurst,
		HandshakeAuth:             stompws.HandshakeAuth(c.Auth.Handshake),
		AuthFailureDelay:          authDelay,
		SendBytesRate:             float64(c.SendBytesRate),
		SendBytesBurst:            int(c.SendBytesBurst),
		MaxUnacked:                maxUnacked,
		MaxDestinationsPerSession: perConnection,
		MemoryHoldTimeout:         c.MemoryHoldTimeout,
		OriginPatterns:            c.originPatterns(),
		ServerName:                "stompd/" + version,
		Logger:                    logger,
		Metrics:                   m,
	}
}

// brokerOptions maps the configuration onto the broker's options, with the destination policies of
// the built-in publishers that are on.
func (c *config) brokerOptions(logger *slog.Logger, memoryLimit int64) broker.Options {
	var policies []broker.DestinationPolicy
	if c.Stocks {
		policies = append(policies, stocks.Policies(stocks.DefaultTopic)...)
	}
	if c.Chat {
		policies = append(policies, chat.Policies(c.chatOptions())...)
	}
	// After the built-in publishers' own: the first match wins, and their destinations must stay
	// read-only whatever a catch-all pattern in the file says.
	policies = append(policies, c.Policies...)
	maxDestinations := c.MaxDestinations
	if maxDestinations == 0 {
		maxDestinations = -1 // the flag's 0 is "no bound"; the broker's is "default"
	}
	return broker.Options{MaxQueueDepth: c.MaxQueueDepth, MaxQueueBytes: int(c.MaxQueueBytes), MaxDestinations: maxDestinations,
		MaxRetainedBytes: c.retainedBound(memoryLimit), Policies: policies, Logger: logger}
}

// retainedBound is the broker's MaxRetainedBytes: -max-retained-bytes, at most a quarter of the memory
// limit (retained messages never drain, so they must leave most of it to what does), and -1 (no
// bound) for 0.
func (c *config) retainedBound(memoryLimit int64) int64 {
	bound := int64(c.MaxRetainedBytes)
	if bound == 0 {
		return -1
	}
	if memoryLimit > 0 && bound > memoryLimit/4 {
		bound = memoryLimit / 4
	}
	return bound
}

func (c *config) stocksOptions() stocks.Options {
	return stocks.Options{Symbols: c.StocksSymbols, MinInterval: c.StocksMinInterval, MaxInterval: c.StocksMaxInterval}
}

func (c *config) chatOptions() chat.Options {
	history := c.ChatHistory
	if history == 0 {
		history = -1 // chat.Options: 0 means the default, negative means none
	}
	return chat.Options{History: history, MaxLength: c.ChatMaxLength}
}

// validateTLS refuses TLS flags that only make sense together when one is missing.
func (c *config) validateTLS() error {
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		return errors.New("flag -tls-cert needs -tls-key: give both PEM files, or neither for plain connections")
	case c.TLSKey != "" && c.TLSCert == "":
		return errors.New("flag -tls-key needs -tls-cert: give both PEM files, or neither for plain connections")
	case c.TLSClientCA != "" && c.TLSCert == "":
		return errors.New("flag -tls-client-ca needs -tls-cert and -tls-key: mutual TLS is TLS first")
	}
	return nil
}

// tlsOn reports whether the listeners speak TLS.
func (c *config) tlsOn() bool { return c.TLSCert != "" }

func (c *config) tlsFiles() tlsFiles {
	return tlsFiles{Cert: c.TLSCert, Key: c.TLSKey, ClientCA: c.TLSClientCA}
}

// originPatterns is -allowed-origins as a list.
func (c *config) originPatterns() []string { return splitList(c.AllowedOrigins) }

// metricsQueues is -metrics-queues as a list.
func (c *config) metricsQueues() []string { return splitList(c.MetricsQueues) }

// splitList splits a comma-separated flag value, dropping blanks around and between items.
func splitList(s string) []string {
	var out []string
	for _, q := range strings.Split(s, ",") {
		if q = strings.TrimSpace(q); q != "" {
			out = append(out, q)
		}
	}
	return out
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: stompd [flags]\n\n")
	fmt.Fprintf(w, "stompd is a STOMP 1.0-1.2 message broker for WebSocket and TCP clients.\n")
	fmt.Fprintf(w, "With no flags it serves ws://localhost:8080/ws and tcp://localhost:61613 from memory.\n\n")
	fmt.Fprintf(w, "Every flag can also be set by an environment variable: STOMPD_ and the flag name in\n")
	fmt.Fprintf(w, "upper case with _ for -, e.g. STOMPD_HTTP_ADDR, and by a key of the same name in the\n")
	fmt.Fprintf(w, "-config YAML file. A flag on the command line wins over the environment, which wins over\n")
	fmt.Fprintf(w, "the file. -check-config prints the result.\n\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// byteSize is a flag value in bytes that accepts KiB/MiB/GiB (and KB/MB/GB as powers of ten) suffixes.
type byteSize int64

func (b *byteSize) String() string {
	n := int64(*b)
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return errors.New("want a byte count such as 4194304, 512KiB or 4MiB")
	}
	*b = byteSize(n * mult)
	return nil
}

// symbolList is the -stocks-symbols flag.
type symbolList []stocks.Symbol

func (l *symbolList) String() string { return stocks.FormatSymbols(*l) }

func (l *symbolList) Set(s string) error {
	symbols, err := stocks.ParseSymbols(s)
	if err != nil {
		return err
	}
	*l = symbols
	return nil
}

// heartBeat is the -heartbeat flag: "send,receive" in milliseconds, as earlier releases took it. Only
// whether each value is 0 matters now: heart-beats follow the client.
type heartBeat struct{ send, receive time.Duration }

func (h *heartBeat) String() string {
	return strconv.FormatInt(h.send.Milliseconds(), 10) + "," + strconv.FormatInt(h.receive.Milliseconds(), 10)
}

func (h *heartBeat) Set(s string) error {
	x, y, ok := strings.Cut(s, ",")
	sx, err1 := strconv.ParseUint(strings.TrimSpace(x), 10, 31)
	sy, err2 := strconv.ParseUint(strings.TrimSpace(y), 10, 31)
	if !ok || err1 != nil || err2 != nil {
		return errors.New("want send,receive in milliseconds, such as 10000,10000")
	}
	h.send, h.receive = time.Duration(sx)*time.Millisecond, time.Duration(sy)*time.Millisecond
	return nil
}
