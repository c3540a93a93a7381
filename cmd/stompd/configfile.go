package main

// The config file is YAML: every flag by its name as a key, plus "policies",
// the per-destination policies, and "rules", the authorization rules, which no
// flag can express. It is the lowest layer
// above the defaults: the environment overrides it and the command line
// overrides both, so a file can be shared by several brokers that differ in
// a flag or two.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws/auth"
)

// Where a setting's value came from, as parseSettings records it and
// printEffectiveConfig shows it.
const (
	sourceDefault = "default"
	sourceFile    = "file"
	sourceEnv     = "env"
	sourceFlag    = "flag"
)

// configFlag names the flag (and, through envName, the variable) that points
// at the config file.
const configFlag = "config"

// Top-level keys of the file that are not flags.
const (
	policiesKey = "policies"
	rulesKey    = "rules"
)

// fileSections are the parts of the config file that are not flags.
type fileSections struct {
	Policies []broker.DestinationPolicy // in file order
	Rules    []auth.Rule                // in file order; nil when the file has none
}

// commandLineOnly lists the flags that choose the configuration or replace
// serving with a one-off action, so a config file may not set them: a file
// naming another file would be a puzzle, and a file that turns every start
// into a health check or a configuration check would stop the broker from
// ever serving.
var commandLineOnly = map[string]bool{configFlag: true, "check-config": true, "healthcheck": true}

// secretWords mark a setting as secret when its name contains one of them:
// its value is never printed by -check-config nor echoed in an error.
var secretWords = []string{"passcode", "password", "secret", "token", "key"}

// isSecretSetting reports whether the setting called name holds a secret.
func isSecretSetting(name string) bool {
	name = strings.ToLower(name)
	if pathSettings[name] {
		return false
	}
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// pathSettings name files rather than hold secrets, though their names match secretWords: the key
// file's path is shown, its content never is.
var pathSettings = map[string]bool{"tls-key": true, "tls-cert": true, "tls-client-ca": true, "jwt-public-key": true, "nats-key": true}

// parseSettings fills fs from, in rising precedence, the config file named by
// -config on the command line or else by STOMPD_CONFIG, the STOMPD_
// environment variables (looked up with lookupEnv), and args. It returns the
// file's destination policies and authorization rules, and where every flag's value
// came from: sourceFlag, sourceEnv, sourceFile or sourceDefault.
//
// Errors name their origin: a file error its path and line, an environment
// error its variable, a command-line error is the flag package's (flag.ErrHelp
// for -h, which the caller answers with the usage). File and environment
// errors never echo a secret's value; the command line's, which repeat what
// the user just typed, are left as the flag package words them. fs must not
// have been parsed or set yet.
func parseSettings(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) (fileSections, map[string]string, error) {
	sources := make(map[string]string)
	var sections fileSections

	// The file is applied first so that the layers above can override it,
	// but its path is itself a flag: find it with a dry run over args. When
	// args do not parse, fs.Parse below reports why; reading the file first
	// would only bury that error under another.
	given, scanErr := scanCommandLine(fs, args)
	if scanErr == nil {
		path, onCommandLine := given[configFlag]
		if !onCommandLine {
			path, _ = lookupEnv(envName(configFlag))
		}
		if path != "" {
			var err error
			if sections, err = loadConfigFile(path, fs); err != nil {
				return fileSections{}, nil, err
			}
			fs.Visit(func(f *flag.Flag) { sources[f.Name] = sourceFile })
		}
	}

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		v, ok := lookupEnv(name)
		if !ok || envErr != nil {
			return
		}
		if err := f.Value.Set(v); err != nil {
			if isSecretSetting(f.Name) {
				envErr = fmt.Errorf("invalid value for %s: %v", name, err)
			} else {
				envErr = fmt.Errorf("invalid value %q for %s: %v", v, name, err)
			}
		}
		sources[f.Name] = sourceEnv
	})
	if envErr != nil {
		return fileSections{}, nil, envErr
	}

	if err := fs.Parse(args); err != nil {
		return fileSections{}, nil, err
	}
	for name := range given {
		sources[name] = sourceFlag
	}
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := sources[f.Name]; !ok {
			sources[f.Name] = sourceDefault
		}
	})
	return sections, sources, nil
}

// scanCommandLine parses args against a stand-in for every flag of fs and
// returns the last text given to each flag on the command line. Nothing in
// fs changes. The stand-ins keep each flag's boolean-ness, so "-stocks x"
// splits exactly as fs.Parse will split it.
func scanCommandLine(fs *flag.FlagSet, args []string) (map[string]string, error) {
	scan := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	scan.SetOutput(io.Discard)
	scan.Usage = func() {}
	given := make(map[string]string)
	fs.VisitAll(func(f *flag.Flag) {
		bf, ok := f.Value.(boolFlag)
		scan.Var(&scannedValue{name: f.Name, given: given, isBool: ok && bf.IsBoolFlag()}, f.Name, f.Usage)
	})
	return given, scan.Parse(args)
}

// boolFlag is how the flag package recognises a flag that needs no value.
type boolFlag interface {
	IsBoolFlag() bool
}

// scannedValue records what the command line gives a flag, for
// scanCommandLine.
type scannedValue struct {
	name   string
	given  map[string]string
	isBool bool
}

func (v *scannedValue) String() string   { return "" }
func (v *scannedValue) IsBoolFlag() bool { return v.isBool }

func (v *scannedValue) Set(s string) error {
	v.given[v.name] = s
	return nil
}

// loadConfigFile reads the YAML config file at path and sets each flag it
// names in fs through fs.Set, so that fs.Visit lists them until anything
// else sets flags. It returns the file's destination policies and
// authorization rules in file order.
//
// The file is one YAML mapping. Its keys are flag names (a flag that only
// makes sense on the command line, such as -config, is refused) and
// "policies", a list of destination policies, and "rules", a list of
// authorization rules. Values are scalars, given to
// the flag in their text form: 4MiB, 10s, "10000,10000", false. An empty
// file sets nothing.
//
// Every problem is an error whose text starts with "path:line: " and names
// the key: an unknown key, a key given twice, a value its flag refuses, a
// list or mapping where a single value belongs, or a bad policy. Values of
// secret settings are not echoed. The first problem stops the load, and fs
// may then be partly set.
func loadConfigFile(path string, fs *flag.FlagSet) (fileSections, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return fileSections{}, fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fileSections{}, nil // empty, or comments only
		}
		return fileSections{}, yamlSyntaxError(path, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return fileSections{}, yamlSyntaxError(path, err)
		}
		return fileSections{}, fmt.Errorf("%s:%d: a second YAML document; the config file holds one mapping", path, next.Line)
	}
	root := doc.Content[0]
	if isNull(root) {
		return fileSections{}, nil
	}
	if root.Kind != yaml.MappingNode {
		return fileSections{}, fmt.Errorf("%s:%d: want a mapping of settings such as \"http-addr: :8080\"", path, root.Line)
	}

	var sections fileSections
	seen := make(map[string]int) // key → line
	for i := 0; i+1 < len(root.Content); i += 2 {
		keyNode, valueNode := root.Content[i], root.Content[i+1]
		key, err := mappingKey(path, keyNode, seen)
		if err != nil {
			return fileSections{}, err
		}
		switch {
		case key == policiesKey:
			if sections.Policies, err = parsePolicies(path, valueNode); err != nil {
				return fileSections{}, err
			}
			continue
		case key == rulesKey:
			if sections.Rules, err = parseRules(path, valueNode); err != nil {
				return fileSections{}, err
			}
			continue
		case commandLineOnly[key]:
			return fileSections{}, fmt.Errorf("%s:%d: %q cannot be set in the config file; give it on the command line or in %s", path, keyNode.Line, key, envName(key))
		case fs.Lookup(key) == nil:
			return fileSections{}, unknownKeyError(path, keyNode.Line, "key", key, fileKeys(fs))
		}
		text, err := scalarText(path, key, valueNode)
		if err != nil {
			return fileSections{}, err
		}
		if err := fs.Set(key, text); err != nil {
			return fileSections{}, fmt.Errorf("%s:%d: %s: %s", path, valueNode.Line, key, describeSetError(fs.Lookup(key), text, err))
		}
	}
	return sections, nil
}

// yamlSyntaxError turns a YAML parse error into "path:line: problem". The
// YAML library leaves the line out when the problem is on the first line.
func yamlSyntaxError(path string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, problem, ok := strings.Cut(rest, ": "); ok {
			if _, err := strconv.Atoi(num); err == nil {
				return fmt.Errorf("%s:%s: %s", path, num, problem)
			}
		}
	}
	return fmt.Errorf("%s: %s", path, msg)
}

// mappingKey returns the text of a mapping key and remembers its line in
// seen, refusing keys that are not plain text or are given twice: YAML's
// own rule, which its node tree does not enforce.
func mappingKey(path string, n *yaml.Node, seen map[string]int) (string, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", fmt.Errorf("%s:%d: want a setting name as the key", path, n.Line)
	}
	if line, ok := seen[n.Value]; ok {
		return "", fmt.Errorf("%s:%d: %q is already set on line %d", path, n.Line, n.Value, line)
	}
	seen[n.Value] = n.Line
	return n.Value, nil
}

// scalarText returns the text of a single value. A missing value is refused
// rather than read as "": "stomp-addr:" left blank is more likely an
// unfinished edit than a wish to turn TCP off.
func scalarText(path, key string, n *yaml.Node) (string, error) {
	line := n.Line
	n = resolveAlias(n)
	switch {
	case n.Kind != yaml.ScalarNode:
		return "", fmt.Errorf("%s:%d: %s: want a single value, not a list or mapping", path, line, key)
	case isNull(n):
		return "", fmt.Errorf(`%s:%d: %s: no value; write "" for an empty one`, path, line, key)
	}
	return n.Value, nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describeSetError words what flag f wants when it refused text. The flag
// package's own errors for its basic kinds ("parse error") say nothing of
// what would have been right, so those are replaced.
func describeSetError(f *flag.Flag, text string, err error) string {
	msg := err.Error()
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case bool:
			msg = "want true or false"
		case int, int64:
			msg = "want an integer"
		case uint, uint64:
			msg = "want a non-negative integer"
		case float64:
			msg = "want a number"
		case time.Duration:
			msg = "want a duration such as 10s, 1m30s or 250ms"
		}
	}
	if isSecretSetting(f.Name) {
		return msg
	}
	return fmt.Sprintf("%s, got %q", msg, text)
}

// fileKeys lists every key a config file may use with fs, for suggestions.
func fileKeys(fs *flag.FlagSet) []string {
	keys := []string{policiesKey, rulesKey}
	fs.VisitAll(func(f *flag.Flag) {
		if !commandLineOnly[f.Name] {
			keys = append(keys, f.Name)
		}
	})
	return keys
}

// unknownKeyError names an unknown key and, when one is close enough to be a
// typo of it, the key that was probably meant.
func unknownKeyError(path string, line int, what, key string, known []string) error {
	best, bestDist := "", 3 // farther than two edits is not a typo
	for _, k := range known {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Errorf("%s:%d: unknown %s %q; did you mean %q?", path, line, what, key, best)
	}
	return fmt.Errorf("%s:%d: unknown %s %q", path, line, what, key)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Keys of one entry under "policies", each a field of
// broker.DestinationPolicy.
const (
	policyPattern       = "pattern"
	policySlowConsumer  = "slow-consumer"
	policyMaxPending    = "max-pending"
	policyLastValue     = "last-value"
	policyHistory       = "history"
	policyReadOnly      = "read-only"
	policyMaxQueueDepth = "max-queue-depth"
	policyMaxQueueBytes = "max-queue-bytes"
	policyStream        = "stream"
	policyMaxAge        = "max-age"
	policyMaxMessages   = "max-messages"
	policyMaxBytes      = "max-bytes"
)

var policyKeys = []string{policyPattern, policySlowConsumer, policyMaxPending, policyLastValue, policyHistory, policyReadOnly,
	policyMaxQueueDepth, policyMaxQueueBytes, policyStream, policyMaxAge, policyMaxMessages, policyMaxBytes}

// parsePolicies reads the list under "policies". A pattern given twice is
// refused: the first matching policy wins, so the second could never apply.
func parsePolicies(path string, list *yaml.Node) ([]broker.DestinationPolicy, error) {
	line := list.Line
	list = resolveAlias(list)
	if isNull(list) {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d: %s: want a list of policies, each starting \"- pattern: ...\"", path, line, policiesKey)
	}
	var policies []broker.DestinationPolicy
	patternLines := make(map[string]int)
	for _, item := range list.Content {
		p, patternLine, err := parsePolicy(path, item)
		if err != nil {
			return nil, err
		}
		if first, ok := patternLines[p.Pattern]; ok {
			return nil, fmt.Errorf("%s:%d: policy pattern %q is already used on line %d; the first matching policy wins, so this one would never apply", path, patternLine, p.Pattern, first)
		}
		patternLines[p.Pattern] = patternLine
		policies = append(policies, p)
	}
	return policies, nil
}

// parsePolicy reads one policy and returns it with the line of its pattern.
func parsePolicy(path string, item *yaml.Node) (broker.DestinationPolicy, int, error) {
	var p broker.DestinationPolicy
	line := item.Line
	item = resolveAlias(item)
	if item.Kind != yaml.MappingNode {
		return p, 0, fmt.Errorf("%s:%d: %s: each policy is a mapping such as {pattern: /topic/prices.#, slow-consumer: conflate}", path, line, policiesKey)
	}
	seen := make(map[string]int)
	patternLine := 0
	for i := 0; i+1 < len(item.Content); i += 2 {
		keyNode, valueNode := item.Content[i], item.Content[i+1]
		key, err := mappingKey(path, keyNode, seen)
		if err != nil {
			return p, 0, err
		}
		if !isPolicyKey(key) {
			return p, 0, unknownKeyError(path, keyNode.Line, "policy key", key, policyKeys)
		}
		text, err := scalarText(path, "policy "+key, valueNode)
		if err != nil {
			return p, 0, err
		}
		if err := setPolicyField(&p, key, text); err != nil {
			return p, 0, fmt.Errorf("%s:%d: policy %s: %v", path, valueNode.Line, key, err)
		}
		if key == policyPattern {
			patternLine = valueNode.Line
		}
	}
	if patternLine == 0 {
		return p, 0, fmt.Errorf("%s:%d: policy has no %s; every policy needs one, such as /topic/prices.# or /queue/orders", path, line, policyPattern)
	}
	if p.Stream && strings.HasPrefix(p.Pattern, "/") && !strings.HasPrefix(p.Pattern, "/topic/") {
		return p, 0, fmt.Errorf("%s:%d: policy %s: streams are topics; %q is not a /topic/ pattern", path, patternLine, policyStream, p.Pattern)
	}
	if !p.Stream && p.StreamLimits != (broker.StreamLimits{}) {
		return p, 0, fmt.Errorf("%s:%d: policy %q: %s, %s and %s bound a stream; add %s: true", path, patternLine, p.Pattern, policyMaxAge, policyMaxMessages, policyMaxBytes, policyStream)
	}
	return p, patternLine, nil
}

func isPolicyKey(key string) bool {
	for _, k := range policyKeys {
		if k == key {
			return true
		}
	}
	return false
}

// setPolicyField sets the field of p that key names from text. Counts take
// the same forms as integer flags; 0 means the broker's default, so only a
// negative count is refused.
func setPolicyField(p *broker.DestinationPolicy, key, text string) error {
	var err error
	switch key {
	case policyPattern:
		err = checkPolicyPattern(text)
		p.Pattern = text
	case policySlowConsumer:
		p.SlowConsumer, err = broker.ParseSlowConsumerPolicy(text)
	case policyMaxPending:
		p.MaxPending, err = parseCount(text)
	case policyHistory:
		p.History, err = parseCount(text)
	case policyMaxQueueDepth:
		p.MaxQueueDepth, err = parseCount(text)
	case policyMaxQueueBytes:
		var n byteSize
		if err = n.Set(text); err != nil {
			err = fmt.Errorf("%w, got %q", err, text)
		}
		p.MaxQueueBytes = int(n)
	case policyStream:
		p.Stream, err = parseBool(text)
	case policyMaxAge:
		var d time.Duration
		if d, err = time.ParseDuration(text); err != nil || d < 0 {
			err = fmt.Errorf("want a duration such as 24h or 30m (0 for no bound), got %q", text)
		}
		p.StreamLimits.MaxAge = d
	case policyMaxMessages:
		var n int
		n, err = parseCount(text)
		p.StreamLimits.MaxMessages = int64(n)
	case policyMaxBytes:
		var n byteSize
		if err = n.Set(text); err != nil {
			err = fmt.Errorf("%w, got %q", err, text)
		}
		p.StreamLimits.MaxBytes = int64(n)
	case policyLastValue:
		p.LastValue, err = parseBool(text)
	case policyReadOnly:
		p.ReadOnly, err = parseBool(text)
	}
	return err
}

func parseCount(text string) (int, error) {
	n, err := strconv.ParseInt(text, 0, strconv.IntSize)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a non-negative integer (0 for the default), got %q", text)
	}
	return int(n), nil
}

func parseBool(text string) (bool, error) {
	b, err := strconv.ParseBool(text)
	if err != nil {
		return false, fmt.Errorf("want true or false, got %q", text)
	}
	return b, nil
}

// checkPolicyPattern refuses a pattern that cannot match any destination
// the broker accepts. broker.MatchTopic compares a pattern with a kind
// prefix to destinations of that kind word by word, and one without a
// prefix to whole destinations, which always start with "/": such a pattern
// only matches when it is made of wildcards alone, like "#".
func checkPolicyPattern(pattern string) error {
	if pattern == "" {
		return errors.New("empty pattern; want one such as /topic/prices.# or /queue/orders")
	}
	if !strings.HasPrefix(pattern, "/") {
		for w := range strings.SplitSeq(pattern, ".") {
			if w != "#" && w != "*" {
				return fmt.Errorf("pattern %q matches no destination: start it with /topic/, /queue/, /reply-queue/ or /app/, or use \"#\" for every destination", pattern)
			}
		}
		return nil
	}
	// A wildcard word stands for any word, so the pattern is sound when it
	// is a valid destination with each wildcard replaced by a plain word.
	slash := strings.IndexByte(pattern[1:], '/')
	if slash < 0 {
		return fmt.Errorf("pattern %q: want a /topic/, /queue/, /reply-queue/ or /app/ prefix", pattern)
	}
	prefix, name := pattern[:slash+2], pattern[slash+2:]
	words := strings.Split(name, ".")
	for i, w := range words {
		if w == "#" || w == "*" {
			words[i] = "x"
		}
	}
	_, err := broker.ParseDestination(prefix + strings.Join(words, "."))
	switch {
	case errors.Is(err, broker.ErrUnknownDestination):
		return fmt.Errorf("pattern %q: want a /topic/, /queue/, /reply-queue/ or /app/ prefix", pattern)
	case err != nil:
		return fmt.Errorf("pattern %q: empty name or empty word between dots", pattern)
	}
	return nil
}

// printEffectiveConfig writes every flag of fs with its value and where it
// came from (sources, as parseSettings returns them; a flag missing from it
// shows as the default), then the destination policies in the order the
// broker matches them. The output is itself a valid config file: flags a
// file may not set, such as -config, appear as comments. Secret settings
// (see isSecretSetting) show as <redacted> unless empty. It returns the
// first write error.
func printEffectiveConfig(w io.Writer, fs *flag.FlagSet, sources map[string]string, policies []broker.DestinationPolicy, rules []auth.Rule) error {
	// Comments line up in one column, except after a value too long to
	// wait for: it should not push every comment off the screen.
	const widestAligned = 48
	type line struct{ setting, source string }
	var lines []line
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		source := sources[f.Name]
		if source == "" {
			source = sourceDefault
		}
		setting := f.Name + ": " + formatSettingValue(f)
		if commandLineOnly[f.Name] {
			setting = "# " + setting
		}
		lines = append(lines, line{setting, source})
		if len(setting) <= widestAligned {
			width = max(width, len(setting))
		}
	})

	var b bytes.Buffer
	b.WriteString("# stompd effective configuration. Each setting's comment says where its value\n")
	b.WriteString("# came from: flag, env (STOMPD_*), file (-config) or default.\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "%-*s  # %s\n", width, l.setting, l.source)
	}
	writeRules(&b, rules)
	if len(policies) == 0 {
		b.WriteString(policiesKey + ": []\n")
	} else {
		b.WriteString(policiesKey + ": # in the order they are matched; the first match wins\n")
		for _, p := range policies {
			fmt.Fprintf(&b, "  - %s: %s\n", policyPattern, yamlString(p.Pattern))
			fmt.Fprintf(&b, "    %s: %s\n", policySlowConsumer, p.SlowConsumer)
			fmt.Fprintf(&b, "    %s: %d\n", policyMaxPending, p.MaxPending)
			fmt.Fprintf(&b, "    %s: %t\n", policyLastValue, p.LastValue)
			fmt.Fprintf(&b, "    %s: %d\n", policyHistory, p.History)
			fmt.Fprintf(&b, "    %s: %t\n", policyReadOnly, p.ReadOnly)
			fmt.Fprintf(&b, "    %s: %d\n", policyMaxQueueDepth, p.MaxQueueDepth)
			fmt.Fprintf(&b, "    %s: %d\n", policyMaxQueueBytes, p.MaxQueueBytes)
			if p.Stream {
				fmt.Fprintf(&b, "    %s: %t\n", policyStream, p.Stream)
				fmt.Fprintf(&b, "    %s: %s\n", policyMaxAge, p.StreamLimits.MaxAge)
				fmt.Fprintf(&b, "    %s: %d\n", policyMaxMessages, p.StreamLimits.MaxMessages)
				fmt.Fprintf(&b, "    %s: %d\n", policyMaxBytes, p.StreamLimits.MaxBytes)
			}
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// formatSettingValue writes f's current value as YAML: booleans and numbers
// bare, everything else as a string, quoted only where YAML needs it. The
// -nats URLs show without their passwords (user:password@ becomes ***@).
func formatSettingValue(f *flag.Flag) string {
	text := f.Value.String()
	if isSecretSetting(f.Name) && text != "" {
		return "<redacted>"
	}
	if f.Name == "nats" {
		text = redactURLs(splitList(text)) // the URLs' passwords, as the log shows them
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case bool, int, int64, uint, uint64, float64:
			return text
		}
	}
	return yamlString(text)
}

// yamlString writes s as a YAML string scalar on one line.
func yamlString(s string) string {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if strings.ContainsAny(s, "\r\n") {
		n.Style = yaml.DoubleQuotedStyle
	}
	out, err := yaml.Marshal(n)
	if err != nil {
		return strconv.Quote(s) // YAML's double-quoted style reads Go's quoting of any text
	}
	return strings.TrimSuffix(string(out), "\n")
}
