package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/stompd/stompd/metrics"
)

// deployDir holds the deployment files, seen from this package's directory.
const deployDir = "../deploy"

// requireTool returns the path of a command-line tool that test/run installs. Without it the test
// fails when STOMPD_REQUIRE_TOOLS is set (as test/run sets it) and is skipped otherwise, naming what
// to install.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	missingTool(t, name+" (Debian package "+debianPackage+")")
	return ""
}

// runTool runs a tool and fails the test with its output if it exits non-zero.
func runTool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtool(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	dir := filepath.Join(deployDir, "prometheus")
	tests := []struct {
		name string
		args []string
	}{
		{"check config", []string{"check", "config", "prometheus.yml"}},
		{"check rules", []string{"check", "rules", "alerts.yml"}},
		{"test rules", []string{"test", "rules", "alerts_test.yml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runTool(t, dir, promtool, tt.args...)
		})
	}
}

// deployFiles returns the files under deploy/ whose names end in one of the suffixes.
func deployFiles(t *testing.T, suffixes ...string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(path, s) }) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no %v files under %s", suffixes, deployDir)
	}
	return files
}

// yamlDocuments decodes every document of a YAML file into generic maps.
func yamlDocuments(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, len(docs)+1, err)
		}
		if doc == nil {
			t.Fatalf("%s: document %d is empty", path, len(docs)+1)
		}
		docs = append(docs, doc)
	}
	if len(docs) == 0 {
		t.Fatalf("%s holds no YAML document", path)
	}
	return docs
}

func TestDeployYAMLParses(t *testing.T) {
	for _, path := range deployFiles(t, ".yml", ".yaml") {
		t.Run(strings.TrimPrefix(path, deployDir+"/"), func(t *testing.T) {
			yamlDocuments(t, path)
		})
	}
}

// dig walks nested maps and lists: a string key indexes a map, an int a list. It fails the test
// when the path does not exist.
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for i, key := range path {
		switch k := key.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok || m[k] == nil {
				t.Fatalf("no %v", path[:i+1])
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("no %v", path[:i+1])
			}
			v = l[k]
		}
	}
	return v
}

// shutdownTimeout returns the value of -shutdown-timeout in args.
func shutdownTimeout(t *testing.T, args []string) time.Duration {
	t.Helper()
	i := slices.Index(args, "-shutdown-timeout")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("no -shutdown-timeout in %q", args)
	}
	d, err := time.ParseDuration(args[i+1])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func stringList(t *testing.T, v any) []string {
	t.Helper()
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

// TestKubernetesManifests checks that the manifests agree with each other and with stompd: the
// grace period outlasts the drain, the probes hit the health endpoints, the selectors match.
func TestKubernetesManifests(t *testing.T) {
	byKind := map[string]map[string]any{}
	manifests, err := filepath.Glob(filepath.Join(deployDir, "k8s", "*.yaml"))
	if err != nil || len(manifests) == 0 {
		t.Fatalf("no manifests in %s/k8s (%v)", deployDir, err)
	}
	for _, path := range manifests {
		for _, doc := range yamlDocuments(t, path) {
			kind, _ := doc["kind"].(string)
			if kind == "" || doc["apiVersion"] == nil || dig(t, doc, "metadata", "name") == nil {
				t.Fatalf("%s: a document lacks apiVersion, kind or metadata.name", path)
			}
			byKind[kind] = doc
		}
	}
	dep, svc, pdb := byKind["Deployment"], byKind["Service"], byKind["PodDisruptionBudget"]
	if dep == nil || svc == nil || pdb == nil {
		t.Fatalf("want a Deployment, a Service and a PodDisruptionBudget; have %v", slices.Collect(maps.Keys(byKind)))
	}
	pod := dig(t, dep, "spec", "template", "spec")
	container := dig(t, pod, "containers", 0)
	podLabels := dig(t, dep, "spec", "template", "metadata", "labels")

	t.Run("grace period outlasts the drain", func(t *testing.T) {
		drain := shutdownTimeout(t, stringList(t, dig(t, container, "args")))
		grace := time.Duration(dig(t, pod, "terminationGracePeriodSeconds").(int)) * time.Second
		if grace < drain+5*time.Second {
			t.Errorf("terminationGracePeriodSeconds %v leaves less than 5s beyond -shutdown-timeout %v", grace, drain)
		}
	})
	t.Run("probes", func(t *testing.T) {
		for probe, want := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
			if got := dig(t, container, probe, "httpGet", "path"); got != want {
				t.Errorf("%s path %v, want %s", probe, got, want)
			}
		}
	})
	t.Run("security context", func(t *testing.T) {
		sc := dig(t, container, "securityContext")
		for _, key := range []string{"runAsNonRoot", "readOnlyRootFilesystem"} {
			if dig(t, sc, key) != true {
				t.Errorf("container securityContext.%s is not true", key)
			}
		}
		if dig(t, sc, "allowPrivilegeEscalation") != false {
			t.Error("container securityContext.allowPrivilegeEscalation is not false")
		}
		dig(t, container, "resources", "requests")
		dig(t, container, "resources", "limits")
	})
	t.Run("service ports", func(t *testing.T) {
		var ports []int
		for _, p := range dig(t, svc, "spec", "ports").([]any) {
			ports = append(ports, dig(t, p, "port").(int))
		}
		slices.Sort(ports)
		if !slices.Equal(ports, []int{8080, 61613}) {
			t.Errorf("Service ports %v, want [8080 61613]", ports)
		}
	})
	t.Run("selectors match the pods", func(t *testing.T) {
		for name, sel := range map[string]any{
			"Deployment":          dig(t, dep, "spec", "selector", "matchLabels"),
			"Service":             dig(t, svc, "spec", "selector"),
			"PodDisruptionBudget": dig(t, pdb, "spec", "selector", "matchLabels"),
		} {
			for k, v := range sel.(map[string]any) {
				if podLabels.(map[string]any)[k] != v {
					t.Errorf("%s selects %s=%v, which the pod template does not carry", name, k, v)
				}
			}
		}
	})
}

// TestCompose checks that every file docker-compose.yml mounts is in the repository and
// that the stop grace period outlasts the drain.
func TestCompose(t *testing.T) {
	doc := yamlDocuments(t, filepath.Join(deployDir, "docker-compose.yml"))[0]
	services := dig(t, doc, "services").(map[string]any)
	for _, name := range []string{"stompd", "prometheus", "grafana"} {
		dig(t, services, name)
	}
	for name, svc := range services {
		vols, _ := svc.(map[string]any)["volumes"].([]any)
		for _, v := range vols {
			src, _, _ := strings.Cut(v.(string), ":")
			if !strings.HasPrefix(src, ".") {
				continue // a named volume
			}
			if _, err := os.Stat(filepath.Join(deployDir, src)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
	}
	drain := shutdownTimeout(t, stringList(t, dig(t, services, "stompd", "command")))
	grace, err := time.ParseDuration(dig(t, services, "stompd", "stop_grace_period").(string))
	if err != nil {
		t.Fatal(err)
	}
	if grace < drain+5*time.Second {
		t.Errorf("stop_grace_period %v leaves less than 5s beyond -shutdown-timeout %v", grace, drain)
	}
}

// TestSystemdUnit runs systemd-analyze verify on the unit (with ExecStart pointed at a stand-in
// executable, since stompd is not installed here) and checks that systemd waits for the drain.
func TestSystemdUnit(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile(filepath.Join(deployDir, "systemd", "stompd.service"))
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string][]string{}
	for line := range strings.Lines(string(unit)) {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = append(settings[k], v)
		}
	}

	t.Run("verify", func(t *testing.T) {
		const installed = "/usr/local/bin/stompd"
		if len(settings["ExecStart"]) != 1 || !strings.HasPrefix(settings["ExecStart"][0], installed+" ") {
			t.Fatalf("ExecStart %q does not start %s", settings["ExecStart"], installed)
		}
		dir := t.TempDir()
		standIn := filepath.Join(dir, "stompd")
		if err := os.WriteFile(standIn, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "stompd.service")
		patched := strings.Replace(string(unit), "ExecStart="+installed, "ExecStart="+standIn, 1)
		if err := os.WriteFile(path, []byte(patched), 0o644); err != nil {
			t.Fatal(err)
		}
		// verify exits 0 on unknown keys and only prints them, so any output is a failure.
		if out := runTool(t, dir, analyze, "verify", path); strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify complains:\n%s", out)
		}
	})
	t.Run("stop timeout outlasts the drain", func(t *testing.T) {
		drain := shutdownTimeout(t, strings.Fields(settings["ExecStart"][0]))
		stop, err := time.ParseDuration(settings["TimeoutStopSec"][0])
		if err != nil {
			t.Fatal(err)
		}
		if stop < drain+5*time.Second {
			t.Errorf("TimeoutStopSec %v leaves less than 5s beyond -shutdown-timeout %v", stop, drain)
		}
	})
	t.Run("hardening", func(t *testing.T) {
		for key, want := range map[string]string{
			"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
			"CapabilityBoundingSet": "", "SystemCallFilter": "@system-service",
		} {
			if !slices.Contains(settings[key], want) {
				t.Errorf("%s=%s missing (have %q)", key, want, settings[key])
			}
		}
		for _, key := range []string{"RestrictAddressFamilies", "EnvironmentFile"} {
			if len(settings[key]) == 0 {
				t.Errorf("%s missing", key)
			}
		}
	})
}

// exportedMetricNames returns every series name a stompd scrape can carry, as PromQL names them:
// histograms and summaries by their _bucket, _sum and _count series. "up" is added by Prometheus.
func exportedMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{})
	m.ObserveBroker(func() metrics.BrokerStats { return metrics.BrokerStats{} })
	m.ObserveQueueDepth([]string{"/queue/q"}, func(string) (int, int, bool) { return 0, 0, true })
	m.ObserveCluster(func() metrics.ClusterStats { return metrics.ClusterStats{} })
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"up": true}
	for _, mf := range families {
		n := mf.GetName()
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[n], names[n+"_sum"], names[n+"_count"] = true, true, true
		default:
			names[n] = true
		}
	}
	return names
}

var (
	// promqlStrings matches string literals, which may hold braces and dollars.
	promqlStrings = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	// promqlVariables matches Grafana variables such as $__rate_interval and ${instance}.
	promqlVariables = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	// promqlMatchers matches label matchers and range or subquery brackets.
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	// promqlGrouping matches label lists after by, without, on, ignoring and group_x.
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	// promqlTokens matches numbers and durations (skipped) and identifiers.
	promqlTokens = regexp.MustCompile(`[0-9][0-9A-Za-z_.]*|[A-Za-z_:][A-Za-z0-9_:]*`)
	// grafanaLabelValues matches a Grafana variable query label_values(EXPR, LABEL).
	grafanaLabelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*\w+\s*\)\s*$`)
)

var promqlKeywords = []string{
	"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan",
}

// promqlMetricNames returns the metric names an expression selects. It is a lexer, not a parser:
// it drops strings, variables, matchers, ranges and grouping labels, then keeps every identifier
// that is neither a keyword nor followed by "(" (a function or an aggregation).
func promqlMetricNames(expr string) []string {
	if m := grafanaLabelValues.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	expr = promqlStrings.ReplaceAllString(expr, `""`)
	expr = promqlVariables.ReplaceAllString(expr, "")
	expr = promqlMatchers.ReplaceAllString(expr, " ")
	expr = promqlGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, loc := range promqlTokens.FindAllStringIndex(expr, -1) {
		tok := expr[loc[0]:loc[1]]
		if tok[0] >= '0' && tok[0] <= '9' || slices.Contains(promqlKeywords, tok) {
			continue
		}
		if rest := strings.TrimLeft(expr[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue
		}
		names = append(names, tok)
	}
	return names
}

func TestPromqlMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`up{job="stompd"} == 0`, []string{"up"}},
		{`sum by (instance, le) (rate(a_bucket{x=~"$instance"}[$__rate_interval])) / ignoring (le) b offset 5m`, []string{"a_bucket", "b"}},
		{`histogram_quantile(0.99, sum without (pod) (rate(x_bucket[5m]))) > 1e3 and on(instance) y`, []string{"x_bucket", "y"}},
		{`label_values(stompd_build_info{job="stompd"}, instance)`, []string{"stompd_build_info"}},
		{`{__name__="hidden"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			if got := promqlMetricNames(tt.expr); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// grafanaExpressions returns every PromQL expression of a dashboard: panel targets and variable
// queries, wherever they are nested.
func grafanaExpressions(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if s, ok := child.(string); ok && (k == "expr" || k == "definition") && s != "" {
				out = append(out, s)
			}
			if k == "query" {
				if q, ok := child.(map[string]any); ok {
					if s, ok := q["query"].(string); ok && strings.HasPrefix(s, "label_values(") {
						out = append(out, s)
					}
					continue
				}
			}
			out = append(out, grafanaExpressions(child)...)
		}
	case []any:
		for _, child := range v {
			out = append(out, grafanaExpressions(child)...)
		}
	}
	return out
}

// TestMonitoringNamesExportedMetrics keeps the dashboard and the alerts honest: every metric they
// query must be one that the metrics package registers.
func TestMonitoringNamesExportedMetrics(t *testing.T) {
	exported := exportedMetricNames(t)

	var dashboard map[string]any
	data, err := os.ReadFile(filepath.Join(deployDir, "grafana", "stompd.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &dashboard); err != nil {
		t.Fatalf("stompd.json: %v", err)
	}
	var alerts struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	data, err = os.ReadFile(filepath.Join(deployDir, "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &alerts); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	var alertExprs []string
	for _, g := range alerts.Groups {
		for _, r := range g.Rules {
			alertExprs = append(alertExprs, r.Expr)
		}
	}

	for _, src := range []struct {
		name  string
		exprs []string
		min   int
	}{
		{"grafana/stompd.json", grafanaExpressions(dashboard), 20},
		{"prometheus/alerts.yml", alertExprs, 4},
	} {
		t.Run(src.name, func(t *testing.T) {
			if len(src.exprs) < src.min {
				t.Fatalf("found %d expressions, want at least %d: the file or this test's reading of it changed", len(src.exprs), src.min)
			}
			for _, expr := range src.exprs {
				names := promqlMetricNames(expr)
				if len(names) == 0 {
					t.Errorf("no metric found in %q", expr)
				}
				for _, n := range names {
					if !exported[n] {
						t.Errorf("%q queries %s, which stompd does not export", expr, n)
					}
				}
			}
		})
	}
}

// TestClusterDeploy checks the cluster deployments: the compose file's three stompd nodes and three
// NATS servers, the NATS configurations (nats-server -t, the version go.mod pins), and the stompd
// settings of the compose file and the Kubernetes Deployment (stompd -check-config with their
// arguments and environment).
func TestClusterDeploy(t *testing.T) {
	dir := filepath.Join(deployDir, "cluster")
	doc := yamlDocuments(t, filepath.Join(dir, "docker-compose.yml"))[0]
	services := dig(t, doc, "services").(map[string]any)
	for _, name := range []string{"stompd-1", "stompd-2", "stompd-3", "nats-1", "nats-2", "nats-3", "prometheus", "grafana"} {
		dig(t, services, name)
	}
	for name, svc := range services {
		vols, _ := svc.(map[string]any)["volumes"].([]any)
		for _, v := range vols {
			src, _, _ := strings.Cut(v.(string), ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			}
		}
	}
	checkConfig := func(what string, args []string, env map[string]any) {
		t.Helper()
		cmd := exec.Command(stompdBinary(t), append([]string{"-check-config"}, args...)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range env {
			if s, ok := v.(string); ok {
				cmd.Env = append(cmd.Env, k+"="+s)
			}
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: stompd -check-config: %v\n%s", what, err, out)
		}
		if !strings.Contains(string(out), "# mode: cluster") {
			t.Errorf("%s: not a cluster node:\n%s", what, out)
		}
	}
	for i := 1; i <= 3; i++ {
		svc := dig(t, services, fmt.Sprintf("stompd-%d", i))
		env := dig(t, svc, "environment").(map[string]any)
		for j := 1; j <= 3; j++ {
			if !strings.Contains(env["STOMPD_NATS"].(string), fmt.Sprintf("nats://nats-%d:4222", j)) {
				t.Errorf("stompd-%d does not list nats-%d", i, j)
			}
		}
		checkConfig(fmt.Sprintf("compose stompd-%d", i), stringList(t, dig(t, svc, "command")), env)
	}
	natsServer := natsServerBinary(t)
	testNATSConfig := func(what, conf string, env ...string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "nats.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(natsServer, "-t", "-c", path)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: nats-server -t: %v\n%s", what, err, out)
		}
	}
	conf, err := os.ReadFile(filepath.Join(dir, "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	testNATSConfig("compose nats.conf", string(conf), "NATS_NAME=nats-1")

	var deployment map[string]any
	for _, path := range []string{"deployment.yaml", "nats.yaml"} {
		for _, d := range yamlDocuments(t, filepath.Join(deployDir, "k8s", path)) {
			switch d["kind"] {
			case "ConfigMap":
				testNATSConfig("k8s nats-config", dig(t, d, "data", "nats.conf").(string), "POD_NAME=nats-0")
			case "Deployment":
				deployment = d
			}
		}
	}
	container := dig(t, deployment, "spec", "template", "spec", "containers", 0)
	env := map[string]any{}
	for _, e := range dig(t, container, "env").([]any) {
		m := e.(map[string]any)
		if v, ok := m["value"].(string); ok {
			env[m["name"].(string)] = v
		} else {
			env[m["name"].(string)] = "stompd-0" // from the pod's name
		}
	}
	checkConfig("k8s Deployment", stringList(t, dig(t, container, "args")), env)
}
