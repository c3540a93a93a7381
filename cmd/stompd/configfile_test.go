package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws/auth"
)

// newTestFlags returns a flag set with one flag of every kind stompd uses,
// the flags that only the command line may give, and two fake secrets, so
// that the file, layering and printing rules can be checked without
// depending on which settings stompd has today.
func newTestFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("stompd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("http-addr", ":8080", "")
	fs.String("stomp-addr", ":61613", "")
	frameSize := byteSize(4 << 20)
	fs.Var(&frameSize, "max-frame-size", "")
	fs.Int("max-headers", 1000, "")
	hb := heartBeat{send: 10 * time.Second, receive: 10 * time.Second}
	fs.Var(&hb, "heartbeat", "")
	fs.Bool("stocks", true, "")
	fs.Duration("shutdown-timeout", 10*time.Second, "")
	fs.Duration("heartbeat-min", time.Second, "")
	fs.Float64("heartbeat-grace", 2, "")
	fs.TextVar(new(slog.Level), "log-level", slog.LevelInfo, "")
	fs.String("config", "", "")
	fs.Bool("check-config", false, "")
	fs.String("auth-token", "", "")
	fs.Var(&minLengthSecret{}, "stomp-passcode", "")
	return fs
}

// minLengthSecret is a fake secret setting that can refuse a value: it is
// empty (unset) or at least 8 characters long.
type minLengthSecret struct{ s string }

func (m *minLengthSecret) String() string { return m.s }

func (m *minLengthSecret) Set(s string) error {
	if s != "" && len(s) < 8 {
		return errors.New("must be at least 8 characters")
	}
	m.s = s
	return nil
}

// flagValues returns the text of every flag in fs.
func flagValues(fs *flag.FlagSet) map[string]string {
	values := make(map[string]string)
	fs.VisitAll(func(f *flag.Flag) { values[f.Name] = f.Value.String() })
	return values
}

// withChanges returns the default values of newTestFlags with changes applied.
func withChanges(changes map[string]string) map[string]string {
	values := flagValues(newTestFlags())
	for k, v := range changes {
		values[k] = v
	}
	return values
}

// writeConfig writes content to name in the current directory, which the
// test has made a temporary one, so that errors carry the short name.
func writeConfig(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadConfigFileSetsFlags(t *testing.T) {
	t.Chdir(t.TempDir())
	cases := []struct {
		name    string
		content string
		changes map[string]string // expected values that differ from the defaults
	}{
		{name: "empty file", content: ""},
		{name: "comments only", content: "# nothing yet\n"},
		{name: "null document", content: "~\n"},
		{name: "no policies", content: "policies: []\n"},
		{name: "every kind of value", content: `
http-addr: ":9000"
stomp-addr: ""
max-frame-size: 64KiB
max-headers: 0x10
heartbeat: "0,5000"
stocks: false
shutdown-timeout: 1m30s
heartbeat-grace: 1.5
log-level: debug
auth-token: s3cret
stomp-passcode: long-enough
`, changes: map[string]string{
			"http-addr": ":9000", "stomp-addr": "", "max-frame-size": "64KiB", "max-headers": "16",
			"heartbeat": "0,5000", "stocks": "false", "shutdown-timeout": "1m30s", "heartbeat-grace": "1.5",
			"log-level": "DEBUG", "auth-token": "s3cret", "stomp-passcode": "long-enough",
		}},
		{name: "unquoted forms", content: "heartbeat: 0,5000\nmax-headers: 1_000_000\nstomp-addr: localhost:61614\n",
			changes: map[string]string{"heartbeat": "0,5000", "max-headers": "1000000", "stomp-addr": "localhost:61614"}},
		{name: "alias", content: "shutdown-timeout: &wait 30s\nheartbeat-min: *wait\n",
			changes: map[string]string{"shutdown-timeout": "30s", "heartbeat-min": "30s"}},
		{name: "numbers and booleans as text", content: "stocks: \"false\"\nmax-headers: '12'\n",
			changes: map[string]string{"stocks": "false", "max-headers": "12"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			writeConfig(t, "stompd.yaml", tc.content)
			fs := newTestFlags()
			sections, err := loadConfigFile("stompd.yaml", fs)
			policies := sections.Policies
			if err != nil {
				t.Fatal(err)
			}
			if len(policies) != 0 {
				t.Errorf("policies %+v, want none", policies)
			}
			if got, want := flagValues(fs), withChanges(tc.changes); !reflect.DeepEqual(got, want) {
				t.Errorf("values\n got %v\nwant %v", got, want)
			}
			// fs.Visit is how parseSettings learns which flags the file set.
			var visited []string
			fs.Visit(func(f *flag.Flag) { visited = append(visited, f.Name) })
			var want []string
			for k := range tc.changes {
				want = append(want, k)
			}
			slices.Sort(want)
			if !slices.Equal(visited, want) {
				t.Errorf("set flags %v, want %v", visited, want)
			}
		})
	}
}

func TestLoadConfigFileErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	cases := []struct {
		name    string
		content string
		want    string
	}{
		// Settings.
		{name: "unknown key, a typo", content: "http-addr: \":8080\"\n\nmax-frame-sise: 4MiB\n",
			want: `stompd.yaml:3: unknown key "max-frame-sise"; did you mean "max-frame-size"?`},
		{name: "unknown key", content: "# settings\nbogus: 1\n", want: `stompd.yaml:2: unknown key "bogus"`},
		{name: "flag spelled with its dash", content: "-stocks: false\n", want: `stompd.yaml:1: unknown key "-stocks"; did you mean "stocks"?`},
		{name: "bad byte size", content: "stocks: true\nmax-frame-size: lots\n",
			want: `stompd.yaml:2: max-frame-size: want a byte count such as 4194304, 512KiB or 4MiB, got "lots"`},
		{name: "bad integer", content: "max-headers: many\n", want: `stompd.yaml:1: max-headers: want an integer, got "many"`},
		{name: "yes is not a boolean", content: "stocks: yes\n", want: `stompd.yaml:1: stocks: want true or false, got "yes"`},
		{name: "duration without unit", content: "shutdown-timeout: 10\n",
			want: `stompd.yaml:1: shutdown-timeout: want a duration such as 10s, 1m30s or 250ms, got "10"`},
		{name: "bad number", content: "heartbeat-grace: twice\n", want: `stompd.yaml:1: heartbeat-grace: want a number, got "twice"`},
		{name: "bad heartbeat", content: "heartbeat: 10\n",
			want: `stompd.yaml:1: heartbeat: want send,receive in milliseconds, such as 10000,10000, got "10"`},
		{name: "bad log level", content: "log-level: loud\n", want: `stompd.yaml:1: log-level: slog: level string "loud": unknown name, got "loud"`},
		{name: "bad secret is not echoed", content: "stomp-passcode: hunter2\n", want: `stompd.yaml:1: stomp-passcode: must be at least 8 characters`},
		{name: "list value", content: "http-addr:\n  - a\n  - b\n", want: `stompd.yaml:2: http-addr: want a single value, not a list or mapping`},
		{name: "mapping value", content: "http-addr: {host: a}\n", want: `stompd.yaml:1: http-addr: want a single value, not a list or mapping`},
		{name: "missing value", content: "stocks: true\nstomp-addr:\n", want: `stompd.yaml:2: stomp-addr: no value; write "" for an empty one`},
		{name: "duplicate key", content: "stocks: true\nmax-headers: 5\nstocks: false\n", want: `stompd.yaml:3: "stocks" is already set on line 1`},
		{name: "config inside the file", content: "stocks: true\nconfig: other.yaml\n",
			want: `stompd.yaml:2: "config" cannot be set in the config file; give it on the command line or in STOMPD_CONFIG`},
		{name: "check-config inside the file", content: "check-config: true\n",
			want: `stompd.yaml:1: "check-config" cannot be set in the config file; give it on the command line or in STOMPD_CHECK_CONFIG`},
		{name: "key that is not text", content: "[a]: 1\n", want: `stompd.yaml:1: want a setting name as the key`},
		{name: "not a mapping", content: "- http-addr: :8080\n", want: `stompd.yaml:1: want a mapping of settings such as "http-addr: :8080"`},
		{name: "two documents", content: "stocks: true\n---\nchat: true\n", want: `stompd.yaml:2: a second YAML document; the config file holds one mapping`},
		{name: "syntax error", content: "stocks: true\nhttp-addr: ':8080\n", want: `stompd.yaml:2: found unexpected end of stream`},
		{name: "syntax error on the first line", content: "stocks: true: false\n", want: `stompd.yaml: mapping values are not allowed in this context`},
		{name: "tab indentation", content: "stocks: true\n\thttp-addr: x\n", want: `stompd.yaml:2: found a tab character that violates indentation`},

		// Policies.
		{name: "policies not a list", content: "policies:\n  pattern: /topic/a\n",
			want: `stompd.yaml:2: policies: want a list of policies, each starting "- pattern: ..."`},
		{name: "policy not a mapping", content: "policies:\n  - /topic/a\n",
			want: `stompd.yaml:2: policies: each policy is a mapping such as {pattern: /topic/prices.#, slow-consumer: conflate}`},
		{name: "policy without pattern", content: "policies:\n  - pattern: /topic/a\n  - last-value: true\n    history: 3\n",
			want: `stompd.yaml:3: policy has no pattern; every policy needs one, such as /topic/prices.# or /queue/orders`},
		{name: "empty pattern", content: "policies:\n  - pattern: \"\"\n",
			want: `stompd.yaml:2: policy pattern: empty pattern; want one such as /topic/prices.# or /queue/orders`},
		{name: "pattern without kind", content: "policies:\n  - pattern: prices.#\n",
			want: `stompd.yaml:2: policy pattern: pattern "prices.#" matches no destination: start it with /topic/, /queue/, /reply-queue/ or /app/, or use "#" for every destination`},
		{name: "pattern of unknown kind", content: "policies:\n  - pattern: /topics/prices.#\n",
			want: `stompd.yaml:2: policy pattern: pattern "/topics/prices.#": want a /topic/, /queue/, /reply-queue/ or /app/ prefix`},
		{name: "pattern with a kind and no slash", content: "policies:\n  - pattern: /topic\n",
			want: `stompd.yaml:2: policy pattern: pattern "/topic": want a /topic/, /queue/, /reply-queue/ or /app/ prefix`},
		{name: "pattern with an empty word", content: "policies:\n  - pattern: /topic/prices..#\n",
			want: `stompd.yaml:2: policy pattern: pattern "/topic/prices..#": empty name or empty word between dots`},
		{name: "pattern with no name", content: "policies:\n  - pattern: /queue/\n",
			want: `stompd.yaml:2: policy pattern: pattern "/queue/": empty name or empty word between dots`},
		{name: "unknown policy key", content: "policies:\n  - pattern: /topic/a\n    max-pendng: 5\n",
			want: `stompd.yaml:3: unknown policy key "max-pendng"; did you mean "max-pending"?`},
		{name: "flag name as policy key", content: "policies:\n  - pattern: /topic/a\n    max-frame-size: 5\n",
			want: `stompd.yaml:3: unknown policy key "max-frame-size"`},
		{name: "bad slow-consumer policy", content: "policies:\n  - pattern: /topic/a\n    slow-consumer: fast\n",
			want: `stompd.yaml:3: policy slow-consumer: invalid slow-consumer policy "fast": want disconnect, conflate or drop-oldest`},
		{name: "negative max-pending", content: "policies:\n  - pattern: /topic/a\n    max-pending: -1\n",
			want: `stompd.yaml:3: policy max-pending: want a non-negative integer (0 for the default), got "-1"`},
		{name: "bad history", content: "policies:\n  - pattern: /topic/a\n    history: lots\n",
			want: `stompd.yaml:3: policy history: want a non-negative integer (0 for the default), got "lots"`},
		{name: "bad max-queue-depth", content: "policies:\n  - pattern: /queue/a\n    max-queue-depth: 1.5\n",
			want: `stompd.yaml:3: policy max-queue-depth: want a non-negative integer (0 for the default), got "1.5"`},
		{name: "bad max-queue-bytes", content: "policies:\n  - pattern: /queue/a\n    max-queue-bytes: lots\n",
			want: `stompd.yaml:3: policy max-queue-bytes: want a byte count such as 4194304, 512KiB or 4MiB, got "lots"`},
		{name: "stream on a queue", content: "policies:\n  - pattern: /queue/a\n    stream: true\n",
			want: `stompd.yaml:2: policy stream: streams are topics; "/queue/a" is not a /topic/ pattern`},
		{name: "stream limit without stream", content: "policies:\n  - pattern: /topic/a\n    max-age: 1h\n",
			want: `stompd.yaml:2: policy "/topic/a": max-age, max-messages and max-bytes bound a stream; add stream: true`},
		{name: "bad max-age", content: "policies:\n  - pattern: /topic/a\n    stream: true\n    max-age: forever\n",
			want: `stompd.yaml:4: policy max-age: want a duration such as 24h or 30m (0 for no bound), got "forever"`},
		{name: "bad last-value", content: "policies:\n  - pattern: /topic/a\n    last-value: sometimes\n",
			want: `stompd.yaml:3: policy last-value: want true or false, got "sometimes"`},
		{name: "bad read-only", content: "policies:\n  - pattern: /topic/a\n    read-only: 2\n",
			want: `stompd.yaml:3: policy read-only: want true or false, got "2"`},
		{name: "policy value is a list", content: "policies:\n  - pattern: [/topic/a, /topic/b]\n",
			want: `stompd.yaml:2: policy pattern: want a single value, not a list or mapping`},
		{name: "policy value missing", content: "policies:\n  - pattern: /topic/a\n    history:\n",
			want: `stompd.yaml:3: policy history: no value; write "" for an empty one`},
		{name: "policy key twice", content: "policies:\n  - pattern: /topic/a\n    history: 1\n    history: 2\n",
			want: `stompd.yaml:4: "history" is already set on line 3`},
		{name: "pattern twice", content: "policies:\n  - pattern: /topic/a.#\n    history: 1\n  - pattern: /topic/a.#\n    last-value: true\n",
			want: `stompd.yaml:4: policy pattern "/topic/a.#" is already used on line 2; the first matching policy wins, so this one would never apply`},
		{name: "policies twice", content: "policies: []\npolicies: []\n", want: `stompd.yaml:2: "policies" is already set on line 1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			writeConfig(t, "stompd.yaml", tc.content)
			_, err := loadConfigFile("stompd.yaml", newTestFlags())
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Fatalf("error\n got %q\nwant %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfigFileMissing(t *testing.T) {
	t.Chdir(t.TempDir())
	_, err := loadConfigFile("absent.yaml", newTestFlags())
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("error %v, want one that is fs.ErrNotExist and names the file", err)
	}
}

func TestLoadConfigFilePolicies(t *testing.T) {
	t.Chdir(t.TempDir())
	cases := []struct {
		name    string
		content string
		want    []broker.DestinationPolicy
	}{
		{name: "empty list", content: "policies: []\n", want: nil},
		{name: "null list", content: "policies:\n", want: nil},
		{name: "every field, in file order", content: `
policies:
  - pattern: /topic/prices.#
    slow-consumer: conflate        # disconnect | conflate | drop-oldest
    max-pending: 100
    last-value: true
    history: 0
    read-only: false
  - pattern: /queue/orders
    max-queue-depth: 50000
    max-queue-bytes: 16MiB
  - pattern: /topic/news
    slow-consumer: Drop-Oldest
    history: 20
    read-only: true
  - pattern: "#"
    slow-consumer: disconnect
`, want: []broker.DestinationPolicy{
			{Pattern: "/topic/prices.#", SlowConsumer: broker.PolicyConflate, MaxPending: 100, LastValue: true},
			{Pattern: "/queue/orders", MaxQueueDepth: 50000, MaxQueueBytes: 16 << 20},
			{Pattern: "/topic/news", SlowConsumer: broker.PolicyDropOldest, History: 20, ReadOnly: true},
			{Pattern: "#", SlowConsumer: broker.PolicyDisconnect},
		}},
		{name: "flow style and every kind of pattern", content: `
policies: [
  {pattern: /queue/orders.*, max-queue-depth: 10},
  {pattern: /reply-queue/#, max-queue-depth: 0x20},
  {pattern: /app/chat, read-only: true},
  {pattern: /topic/*.quotes.#, last-value: true},
  {pattern: "*.#"},
]
`, want: []broker.DestinationPolicy{
			{Pattern: "/queue/orders.*", MaxQueueDepth: 10},
			{Pattern: "/reply-queue/#", MaxQueueDepth: 32},
			{Pattern: "/app/chat", ReadOnly: true},
			{Pattern: "/topic/*.quotes.#", LastValue: true},
			{Pattern: "*.#"},
		}},
		{name: "streams", content: `
policies:
  - pattern: /topic/events.#
    stream: true
    max-age: 24h
    max-messages: 1000000
    max-bytes: 1GiB
  - pattern: /topic/audit
    stream: true
`, want: []broker.DestinationPolicy{
			{Pattern: "/topic/events.#", Stream: true, StreamLimits: broker.StreamLimits{MaxAge: 24 * time.Hour, MaxMessages: 1000000, MaxBytes: 1 << 30}},
			{Pattern: "/topic/audit", Stream: true},
		}},
		{name: "shared settings through an anchor", content: `
policies:
  - pattern: /topic/prices
    slow-consumer: &lagging conflate
    max-pending: &held 7
  - pattern: /topic/rates
    slow-consumer: *lagging
    max-pending: *held
`, want: []broker.DestinationPolicy{
			{Pattern: "/topic/prices", SlowConsumer: broker.PolicyConflate, MaxPending: 7},
			{Pattern: "/topic/rates", SlowConsumer: broker.PolicyConflate, MaxPending: 7},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			writeConfig(t, "stompd.yaml", tc.content)
			fs := newTestFlags()
			gotSections, err := loadConfigFile("stompd.yaml", fs)
			got := gotSections.Policies
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("policies\n got %+v\nwant %+v", got, tc.want)
			}
			if got, want := flagValues(fs), flagValues(newTestFlags()); !reflect.DeepEqual(got, want) {
				t.Errorf("policies changed flags: %v", got)
			}
			// A policy's pattern must mean what the broker will make of it.
			for _, p := range got {
				dest := strings.NewReplacer("*", "w", "#", "w").Replace(p.Pattern)
				if !strings.HasPrefix(dest, "/") {
					dest = "/topic/w"
				}
				if !broker.MatchTopic(p.Pattern, dest) {
					t.Errorf("pattern %q does not match %q", p.Pattern, dest)
				}
			}
		})
	}
}

func TestParseSettingsPrecedence(t *testing.T) {
	t.Chdir(t.TempDir())
	writeConfig(t, "stompd.yaml", `
http-addr: ":7000"
max-frame-size: 1MiB
stocks: false
max-headers: 7
policies:
  - pattern: /topic/prices.#
    slow-consumer: conflate
`)
	writeConfig(t, "other.yaml", "http-addr: \":7100\"\n")
	writeConfig(t, "broken.yaml", "bogus: true\n")
	filePolicies := []broker.DestinationPolicy{{Pattern: "/topic/prices.#", SlowConsumer: broker.PolicyConflate}}

	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		changes  map[string]string // expected values that differ from the defaults
		sources  map[string]string // expected sources other than the default
		policies []broker.DestinationPolicy
	}{
		{name: "defaults", sources: map[string]string{}},
		{name: "file only, named by flag", args: []string{"-config", "stompd.yaml"},
			changes:  map[string]string{"config": "stompd.yaml", "http-addr": ":7000", "max-frame-size": "1MiB", "stocks": "false", "max-headers": "7"},
			sources:  map[string]string{"config": "flag", "http-addr": "file", "max-frame-size": "file", "stocks": "file", "max-headers": "file"},
			policies: filePolicies},
		{name: "file only, named by environment", env: map[string]string{"STOMPD_CONFIG": "stompd.yaml"},
			changes:  map[string]string{"config": "stompd.yaml", "http-addr": ":7000", "max-frame-size": "1MiB", "stocks": "false", "max-headers": "7"},
			sources:  map[string]string{"config": "env", "http-addr": "file", "max-frame-size": "file", "stocks": "file", "max-headers": "file"},
			policies: filePolicies},
		{name: "env over file", env: map[string]string{"STOMPD_CONFIG": "stompd.yaml", "STOMPD_HTTP_ADDR": ":8000", "STOMPD_STOCKS": "true"},
			changes:  map[string]string{"config": "stompd.yaml", "http-addr": ":8000", "max-frame-size": "1MiB", "max-headers": "7"},
			sources:  map[string]string{"config": "env", "http-addr": "env", "max-frame-size": "file", "stocks": "env", "max-headers": "file"},
			policies: filePolicies},
		{name: "flag over env over file",
			args: []string{"-config=stompd.yaml", "-http-addr", ":9000", "-max-headers=9", "-heartbeat-grace", "3"},
			env:  map[string]string{"STOMPD_HTTP_ADDR": ":8000", "STOMPD_MAX_FRAME_SIZE": "2MiB", "STOMPD_MAX_HEADERS": "8"},
			changes: map[string]string{"config": "stompd.yaml", "http-addr": ":9000", "max-frame-size": "2MiB", "stocks": "false",
				"max-headers": "9", "heartbeat-grace": "3"},
			sources: map[string]string{"config": "flag", "http-addr": "flag", "max-frame-size": "env", "stocks": "file",
				"max-headers": "flag", "heartbeat-grace": "flag"},
			policies: filePolicies},
		{name: "config flag over config variable", args: []string{"-config", "other.yaml"}, env: map[string]string{"STOMPD_CONFIG": "broken.yaml"},
			changes: map[string]string{"config": "other.yaml", "http-addr": ":7100"},
			sources: map[string]string{"config": "flag", "http-addr": "file"}},
		{name: "empty config flag turns the variable's file off", args: []string{"-config="}, env: map[string]string{"STOMPD_CONFIG": "broken.yaml"},
			sources: map[string]string{"config": "flag"}},
		{name: "boolean flag before the config flag", args: []string{"-stocks", "-config", "stompd.yaml"},
			changes:  map[string]string{"config": "stompd.yaml", "http-addr": ":7000", "max-frame-size": "1MiB", "max-headers": "7"},
			sources:  map[string]string{"config": "flag", "http-addr": "file", "max-frame-size": "file", "stocks": "flag", "max-headers": "file"},
			policies: filePolicies},
		{name: "last config flag wins", args: []string{"-config", "broken.yaml", "-config", "other.yaml"},
			changes: map[string]string{"config": "other.yaml", "http-addr": ":7100"},
			sources: map[string]string{"config": "flag", "http-addr": "file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := newTestFlags()
			sections, sources, err := parseSettings(fs, tc.args, env(tc.env))
			policies := sections.Policies
			if err != nil {
				t.Fatal(err)
			}
			if got, want := flagValues(fs), withChanges(tc.changes); !reflect.DeepEqual(got, want) {
				t.Errorf("values\n got %v\nwant %v", got, want)
			}
			wantSources := make(map[string]string)
			fs.VisitAll(func(f *flag.Flag) { wantSources[f.Name] = "default" })
			for k, v := range tc.sources {
				wantSources[k] = v
			}
			if !reflect.DeepEqual(sources, wantSources) {
				t.Errorf("sources\n got %v\nwant %v", sources, wantSources)
			}
			if !reflect.DeepEqual(policies, tc.policies) {
				t.Errorf("policies %+v, want %+v", policies, tc.policies)
			}
		})
	}
}

func TestParseSettingsErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	writeConfig(t, "broken.yaml", "stocks: true\nbogus: true\n")
	cases := []struct {
		name   string
		args   []string
		env    map[string]string
		want   string
		wantIs error
	}{
		{name: "file error", args: []string{"-config", "broken.yaml"}, want: `broken.yaml:2: unknown key "bogus"`},
		{name: "file error through the variable", env: map[string]string{"STOMPD_CONFIG": "broken.yaml"}, want: `broken.yaml:2: unknown key "bogus"`},
		{name: "missing file", args: []string{"-config", "absent.yaml"}, want: "config file: open absent.yaml: no such file or directory", wantIs: fs.ErrNotExist},
		// A command line that does not parse is reported as such, before
		// the file it names is read.
		{name: "help before the file", args: []string{"-config", "broken.yaml", "-h"}, wantIs: flag.ErrHelp},
		{name: "bad flag before the file", args: []string{"-config", "broken.yaml", "-nope"}, want: "flag provided but not defined: -nope"},
		{name: "bad flag value", args: []string{"-max-headers", "x"}, want: `invalid value "x" for flag -max-headers: parse error`},
		{name: "bad variable", env: map[string]string{"STOMPD_MAX_HEADERS": "many"}, want: `invalid value "many" for STOMPD_MAX_HEADERS: parse error`},
		{name: "bad secret variable is not echoed", env: map[string]string{"STOMPD_STOMP_PASSCODE": "hunter2"},
			want: "invalid value for STOMPD_STOMP_PASSCODE: must be at least 8 characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseSettings(newTestFlags(), tc.args, env(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != "" && err.Error() != tc.want {
				t.Errorf("error\n got %q\nwant %q", err, tc.want)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
		})
	}
}

// parsedOutput is printEffectiveConfig's output read back line by line.
type parsedOutput struct {
	settings map[string]string // "name: value" by name, commented-out ones with their "# "
	sources  map[string]string
}

func parseOutput(t *testing.T, out string) parsedOutput {
	t.Helper()
	p := parsedOutput{settings: make(map[string]string), sources: make(map[string]string)}
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		setting, source, ok := strings.Cut(line, "  # ")
		if !ok || strings.HasPrefix(line, "policies") || strings.HasPrefix(line, " ") {
			continue
		}
		setting = strings.TrimSpace(setting)
		name, _, _ := strings.Cut(strings.TrimPrefix(setting, "# "), ":")
		p.settings[name], p.sources[name] = setting, source
	}
	return p
}

func TestPrintEffectiveConfig(t *testing.T) {
	t.Chdir(t.TempDir())
	writeConfig(t, "stompd.yaml", "http-addr: \":7000\"\nstocks: false\nauth-token: file-secret-1\n")
	fs := newTestFlags()
	sections, sources, err := parseSettings(fs, []string{"-config", "stompd.yaml", "-max-headers", "9"},
		env(map[string]string{"STOMPD_STOMP_PASSCODE": "env-secret-2", "STOMPD_HTTP_ADDR": "localhost:7001"}))
	if err != nil {
		t.Fatal(err)
	}
	policies := append(sections.Policies,
		broker.DestinationPolicy{Pattern: "/topic/prices.#", SlowConsumer: broker.PolicyConflate, MaxPending: 50, LastValue: true},
		broker.DestinationPolicy{Pattern: "#", History: 3, ReadOnly: true, MaxQueueDepth: 9})
	var buf bytes.Buffer
	if err := printEffectiveConfig(&buf, fs, sources, policies, nil); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	got := parseOutput(t, out)

	cases := []struct{ name, setting, source string }{
		{"http-addr", `http-addr: localhost:7001`, "env"},
		{"stocks", `stocks: false`, "file"},
		{"max-headers", `max-headers: 9`, "flag"},
		{"stomp-addr", `stomp-addr: :61613`, "default"},
		{"max-frame-size", `max-frame-size: 4MiB`, "default"},
		{"heartbeat", `heartbeat: 10000,10000`, "default"},
		{"heartbeat-grace", `heartbeat-grace: 2`, "default"},
		{"shutdown-timeout", `shutdown-timeout: 10s`, "default"},
		{"log-level", `log-level: INFO`, "default"},
		{"config", `# config: stompd.yaml`, "flag"},
		{"check-config", `# check-config: false`, "default"},
		// Secrets: a set one is hidden whatever its source, an unset one shows as unset.
		{"auth-token", `auth-token: <redacted>`, "file"},
		{"stomp-passcode", `stomp-passcode: <redacted>`, "env"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got.settings[tc.name] != tc.setting || got.sources[tc.name] != tc.source {
				t.Errorf("got %q from %q, want %q from %q", got.settings[tc.name], got.sources[tc.name], tc.setting, tc.source)
			}
		})
	}
	if len(got.settings) != len(flagValues(fs)) {
		t.Errorf("%d settings printed, want all %d:\n%s", len(got.settings), len(flagValues(fs)), out)
	}
	for _, secret := range []string{"file-secret-1", "env-secret-2"} {
		if strings.Contains(out, secret) {
			t.Errorf("output shows secret %q:\n%s", secret, out)
		}
	}
	wantPolicies := `policies: # in the order they are matched; the first match wins
  - pattern: /topic/prices.#
    slow-consumer: conflate
    max-pending: 50
    last-value: true
    history: 0
    read-only: false
    max-queue-depth: 0
    max-queue-bytes: 0
  - pattern: '#'
    slow-consumer: disconnect
    max-pending: 0
    last-value: false
    history: 3
    read-only: true
    max-queue-depth: 9
    max-queue-bytes: 0
`
	if !strings.HasSuffix(out, wantPolicies) {
		t.Errorf("output does not end with the policies:\n%s", out)
	}

	t.Run("output is a config file", func(t *testing.T) {
		fs := newTestFlags()
		_, sources, err := parseSettings(fs, []string{"-max-headers", "9"}, env(map[string]string{"STOMPD_HTTP_ADDR": ":7001"}))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := printEffectiveConfig(&buf, fs, sources, policies, nil); err != nil {
			t.Fatal(err)
		}
		writeConfig(t, "printed.yaml", buf.String())
		reloaded := newTestFlags()
		gotSections, err := loadConfigFile("printed.yaml", reloaded)
		gotPolicies := gotSections.Policies
		if err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
		if got, want := flagValues(reloaded), flagValues(fs); !reflect.DeepEqual(got, want) {
			t.Errorf("reloaded values\n got %v\nwant %v", got, want)
		}
		if !reflect.DeepEqual(gotPolicies, policies) {
			t.Errorf("reloaded policies\n got %+v\nwant %+v", gotPolicies, policies)
		}
	})

	t.Run("no policies", func(t *testing.T) {
		var buf bytes.Buffer
		if err := printEffectiveConfig(&buf, newTestFlags(), nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(buf.String(), "\npolicies: []\n") {
			t.Errorf("output does not end with an empty policy list:\n%s", buf.String())
		}
		for name, source := range parseOutput(t, buf.String()).sources {
			if source != "default" {
				t.Errorf("%s from %q with no sources given, want default", name, source)
			}
		}
	})

	t.Run("write error", func(t *testing.T) {
		if err := printEffectiveConfig(failingWriter{}, newTestFlags(), nil, nil, nil); !errors.Is(err, errWriteFailed) {
			t.Errorf("error %v, want %v", err, errWriteFailed)
		}
	})
}

var errWriteFailed = errors.New("write failed")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errWriteFailed }

func TestIsSecretSetting(t *testing.T) {
	cases := []struct {
		name string
		want bool
	}{
		{"stomp-passcode", true}, {"admin-password", true}, {"jwt-secret", true}, {"auth-token", true},
		{"tls-key", false}, {"tls-cert", false}, {"api-key", true}, {"API-Key", true}, {"token", true},
		{"http-addr", false}, {"max-frame-size", false}, {"heartbeat", false}, {"stocks-symbols", false}, {"config", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isSecretSetting(tc.name); got != tc.want {
				t.Errorf("isSecretSetting(%q) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

// argRecorder stands in for one of stompd's flags: what the config file
// sets it to becomes a command-line argument for parseConfig.
type argRecorder struct {
	name string
	args *[]string
	set  map[string]bool
}

func (a *argRecorder) String() string { return "" }

func (a *argRecorder) Set(s string) error {
	*a.args = append(*a.args, "-"+a.name+"="+s)
	a.set[a.name] = true
	return nil
}

// TestExampleConfigIsTheDefaults keeps testdata/stompd.example.yaml in step
// with stompd's flags: it must name every flag a file may set, and give each
// its default. stompd's flag set is private to parseConfig, so the test
// learns the flag names from the variables parseConfig looks up (one per
// flag), loads the example against stand-ins for those flags, and hands
// what the file says to parseConfig as a command line: the configuration
// that comes out must equal the one that no settings give.
func TestExampleConfigIsTheDefaults(t *testing.T) {
	var looked []string
	defaults, err := parseConfig(nil, func(name string) (string, bool) {
		looked = append(looked, name)
		return "", false
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	stand := flag.NewFlagSet("stompd", flag.ContinueOnError)
	var args []string
	set := make(map[string]bool)
	for _, variable := range looked {
		name := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(variable, envPrefix)), "_", "-")
		if envName(name) != variable || stand.Lookup(name) != nil {
			continue
		}
		stand.Var(&argRecorder{name: name, args: &args, set: set}, name, "")
	}
	if stand.Lookup("http-addr") == nil {
		t.Fatalf("flag names not learned from the variables looked up: %v", looked)
	}

	path := filepath.Join("testdata", "stompd.example.yaml")
	sections, err := loadConfigFile(path, stand)
	policies := sections.Policies
	if err != nil {
		t.Fatal(err)
	}
	if len(policies) != 0 {
		t.Errorf("the example sets policies %+v; keep them in comments", policies)
	}
	stand.VisitAll(func(f *flag.Flag) {
		if !commandLineOnly[f.Name] && !set[f.Name] {
			t.Errorf("%s does not set %s", path, f.Name)
		}
	})

	fromFile, err := parseConfig(args, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("the example's values %v: %v", args, err)
	}
	want, got := reflect.ValueOf(*defaults), reflect.ValueOf(*fromFile)
	for i := range want.NumField() {
		field := want.Type().Field(i)
		// Sources records where values came from, not what they are.
		if !field.IsExported() || field.Name == "Sources" {
			continue
		}
		if w, g := want.Field(i).Interface(), got.Field(i).Interface(); !reflect.DeepEqual(w, g) {
			t.Errorf("%s: the example gives %v, the default is %v", field.Name, g, w)
		}
	}
}

func BenchmarkLoadConfigFile(b *testing.B) {
	b.Chdir(b.TempDir())
	content := `
http-addr: ":9000"
stomp-addr: ""
max-frame-size: 64KiB
max-headers: 100
heartbeat: "0,5000"
stocks: false
shutdown-timeout: 1m30s
heartbeat-grace: 1.5
log-level: debug
policies:
  - pattern: /topic/prices.#
    slow-consumer: conflate
    max-pending: 100
    last-value: true
  - pattern: /queue/orders
    max-queue-depth: 50000
  - pattern: "#"
    read-only: true
`
	if err := os.WriteFile("stompd.yaml", []byte(content), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := loadConfigFile("stompd.yaml", newTestFlags()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPrintEffectiveConfig(b *testing.B) {
	fs := newTestFlags()
	policies := []broker.DestinationPolicy{
		{Pattern: "/topic/prices.#", SlowConsumer: broker.PolicyConflate, MaxPending: 100, LastValue: true},
		{Pattern: "/queue/orders", MaxQueueDepth: 50000},
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := printEffectiveConfig(io.Discard, fs, nil, policies, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func TestConfigFileRules(t *testing.T) {
	t.Chdir(t.TempDir())
	writeConfig(t, "stompd.yaml", `rules:
  - users: ["*"]
    publish: /app/chat
    subscribe: [/topic/chat, "/topic/stocks.*"]
  - roles: [ops, admin]
    publish: ["/queue/#"]
`)
	sections, err := loadConfigFile("stompd.yaml", newTestFlags())
	if err != nil {
		t.Fatal(err)
	}
	want := []auth.Rule{
		{Users: []string{"*"}, Publish: []string{"/app/chat"}, Subscribe: []string{"/topic/chat", "/topic/stocks.*"}},
		{Roles: []string{"ops", "admin"}, Publish: []string{"/queue/#"}},
	}
	if !reflect.DeepEqual(sections.Rules, want) {
		t.Fatalf("rules %+v, want %+v", sections.Rules, want)
	}

	// What -check-config prints reads back as the same rules.
	var buf bytes.Buffer
	if err := printEffectiveConfig(&buf, newTestFlags(), nil, nil, sections.Rules); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, "printed.yaml", buf.String())
	reloaded, err := loadConfigFile("printed.yaml", newTestFlags())
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(reloaded.Rules, want) {
		t.Fatalf("printed rules read back as %+v", reloaded.Rules)
	}

	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "rules:\n  - users: [a]\n    publsh: [/topic/x]\n", `stompd.yaml:3: unknown rule key "publsh"; did you mean "publish"?`},
		{"nobody", "rules:\n  - publish: [/topic/x]\n", "stompd.yaml:2: rule: names no users and no roles"},
		{"nothing granted", "rules:\n  - users: [a]\n", "stompd.yaml:2: rule: grants neither publish nor subscribe"},
		{"empty list", "rules:\n  - users: []\n    publish: [/topic/x]\n", "stompd.yaml:2: rule users: an empty list grants nothing; leave the key out"},
		{"not a list", "rules: {users: [a]}\n", "stompd.yaml:1: rules: want a list of rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeConfig(t, "bad.yaml", tc.yaml)
			_, err := loadConfigFile("bad.yaml", newTestFlags())
			if err == nil || !strings.HasPrefix(strings.ReplaceAll(err.Error(), "bad.yaml", "stompd.yaml"), tc.want) {
				t.Fatalf("error %v, want it to start with %q", err, tc.want)
			}
		})
	}
}
