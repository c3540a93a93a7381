package main

import (
	"flag"
	"fmt"
	"io"
	"time"
)

// Defaults of the connection flags.
const (
	defaultURL            = "tcp://localhost:61613"
	defaultHost           = "/"
	defaultHeartBeat      = 10 * time.Second
	defaultConnectTimeout = 10 * time.Second
)

// connFlags are the flags every command that talks to a broker shares.
type connFlags struct {
	url            string
	login          string
	passcode       string
	host           string
	heartBeat      time.Duration
	connectTimeout time.Duration
	tls            tlsFlags
}

// tlsFlags configure TLS for tcps://, ssl:// and wss:// URLs.
type tlsFlags struct {
	caFile   string
	certFile string
	keyFile  string
	insecure bool
}

// any reports whether a TLS flag was given, which makes sense only with a TLS URL.
func (t tlsFlags) any() bool {
	return t.caFile != "" || t.certFile != "" || t.keyFile != "" || t.insecure
}

func (c *connFlags) register(fs *flagSet) {
	fs.StringVar(&c.url, "url", defaultURL, "broker `URL`: tcp://, tcps://, ssl://, ws:// or wss:// (env STOMP_URL)")
	fs.StringVar(&c.login, "login", "", "login `name` (env STOMP_LOGIN)")
	fs.StringVar(&c.passcode, "passcode", "", "`passcode`; prefer env STOMP_PASSCODE, which other users cannot read from the process list")
	fs.StringVar(&c.host, "host", defaultHost, "CONNECT host header, the virtual host on brokers that have them")
	fs.DurationVar(&c.heartBeat, "heartbeat", defaultHeartBeat, "heart-beat `interval` offered both ways; 0 turns heart-beats off")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", defaultConnectTimeout, "bound on dialling, TLS, WebSocket and STOMP handshakes (exit 3 when exceeded)")
	fs.StringVar(&c.tls.caFile, "ca", "", "PEM `file` of CA certificates to trust instead of the system's")
	fs.StringVar(&c.tls.certFile, "cert", "", "PEM client certificate `file` (with -key)")
	fs.StringVar(&c.tls.keyFile, "key", "", "PEM client key `file` (with -cert)")
	fs.BoolVar(&c.tls.insecure, "insecure", false, "INSECURE: skip verification of the broker's certificate and name;\nanyone on the path can read and alter the traffic. For tests only")
}

// applyEnv fills the flags the command line left unset from STOMP_URL, STOMP_LOGIN and
// STOMP_PASSCODE.
func (c *connFlags) applyEnv(fs *flagSet, lookupEnv func(string) (string, bool)) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, e := range []struct {
		flag, env string
		dst       *string
	}{
		{"url", "STOMP_URL", &c.url},
		{"login", "STOMP_LOGIN", &c.login},
		{"passcode", "STOMP_PASSCODE", &c.passcode},
	} {
		if v, ok := lookupEnv(e.env); ok && !set[e.flag] {
			*e.dst = v
		}
	}
}

// flagSet is a command's flags with the text of its usage message.
type flagSet struct {
	*flag.FlagSet
	synopsis string // after "usage: stomp NAME"
	about    string // one paragraph on what the command does
}

// newFlagSet returns the flags of command name. Parsing prints nothing itself: parseInterspersed
// prints the usage, to stdout for -h and to stderr after a flag error.
func newFlagSet(name, synopsis, about string) *flagSet {
	fs := flag.NewFlagSet("stomp "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, synopsis: synopsis, about: about}
}

// printUsage writes the command's usage and flags to w.
func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s %s\n\n%s\n\nFlags:\n", fs.Name(), fs.synopsis, fs.about)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprintln(w, "\nExit codes: 0 ok, 1 runtime or broker error, 2 usage error, 3 timeout.")
}

// parseInterspersed parses flags that may come before, between or after the positional arguments,
// which the flag package alone does not allow, and returns the positional arguments. "--" ends the
// flags; a lone "-" is an argument (stdin). -h prints the usage to con.stdout and returns
// flag.ErrHelp; a bad flag prints the problem and the usage to con.stderr and returns
// errFlagReported.
func parseInterspersed(fs *flagSet, args []string, con *console) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				fs.printUsage(con.stdout)
				return nil, err
			}
			fmt.Fprintf(con.stderr, "%s: %v\n", fs.Name(), err)
			fs.printUsage(con.stderr)
			return nil, errFlagReported
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
