package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stompd/stompd/broker/natsengine"
	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws/admin"
)

// clusterSettings are the flags of the cluster mode (-nats).
type clusterSettings struct {
	URLs       string
	NodeName   string
	Creds      string
	User       string
	Password   string
	CA         string
	Cert       string
	Key        string
	ReadyGrace time.Duration
	Replicas   int
	AckWait    time.Duration
}

// register adds the cluster flags to fs.
func (s *clusterSettings) register(fs *flag.FlagSet) {
	fs.StringVar(&s.URLs, "nats", "", "comma-separated NATS server `URLs` (nats://host:4222, tls://host:4222): join the cluster of\nstompd nodes on them, which then serve as one broker; empty runs this node alone")
	fs.StringVar(&s.NodeName, "node-name", "", "this node's `name` in the cluster (its heart-beats, logs and metrics); default: the host name")
	fs.StringVar(&s.Creds, "nats-creds", "", "NATS credentials `file` (JWT and seed, .creds)")
	fs.StringVar(&s.User, "nats-user", "", "NATS user `name`, with -nats-password")
	fs.StringVar(&s.Password, "nats-password", "", "NATS `password`; prefer the environment (STOMPD_NATS_PASSWORD) to the command line")
	fs.StringVar(&s.CA, "nats-ca", "", "PEM `file` of the CA certificates that sign the NATS servers' (tls:// URLs)")
	fs.StringVar(&s.Cert, "nats-cert", "", "PEM client certificate `file` for NATS servers that require one, with -nats-key")
	fs.StringVar(&s.Key, "nats-key", "", "PEM private key `file` for -nats-cert")
	fs.IntVar(&s.Replicas, "nats-replicas", 1, "how many NATS servers keep a copy of each stream the cluster stores (retained messages):\n3 in a three-server NATS cluster, so that it survives one server's loss")
	fs.DurationVar(&s.AckWait, "nats-ack-wait", natsengine.DefaultClusterAckWait, "how long the queue messages a crashed node held unacknowledged wait before they go to\nconsumers on other nodes (a node shut down gracefully hands them over at once)")
	fs.DurationVar(&s.ReadyGrace, "nats-ready-grace", 10*time.Second, "how long /readyz stays 200 after the NATS connection is lost (local traffic goes on meanwhile)")
}

// on reports whether the node joins a cluster.
func (s *clusterSettings) on() bool { return strings.TrimSpace(s.URLs) != "" }

// validate checks the cluster flags together.
func (s *clusterSettings) validate(dataDir string) error {
	if !s.on() {
		return nil
	}
	if dataDir != "" {
		return errors.New("-nats and -data-dir exclude each other: a cluster keeps its messages on the NATS servers' JetStream, -data-dir is for a node on its own")
	}
	for _, u := range splitList(s.URLs) {
		if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") {
			return fmt.Errorf("invalid value %q for flag -nats: want nats://HOST:PORT or tls://HOST:PORT URLs", redactURL(u))
		}
	}
	if (s.Cert == "") != (s.Key == "") {
		return errors.New("-nats-cert and -nats-key go together")
	}
	if s.Password != "" && s.User == "" {
		return errors.New("-nats-password needs -nats-user")
	}
	if s.Replicas < 1 || s.Replicas > 5 {
		return errors.New("invalid value for flag -nats-replicas: want 1 to 5")
	}
	if s.AckWait < time.Second {
		return errors.New("invalid value for flag -nats-ack-wait: want 1s or more")
	}
	if s.ReadyGrace < 0 {
		return errors.New("invalid value for flag -nats-ready-grace: must not be negative")
	}
	return nil
}

// nodeName is -node-name, or the host name.
func (s *clusterSettings) nodeName() string {
	if s.NodeName != "" {
		return s.NodeName
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "stompd"
}

// natsOptions turns the TLS and credential flags into connection options.
func (s *clusterSettings) natsOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if s.Creds != "" {
		if _, err := os.Stat(s.Creds); err != nil {
			return nil, fmt.Errorf("-nats-creds: %w", err)
		}
		opts = append(opts, nats.UserCredentials(s.Creds))
	}
	if s.User != "" {
		opts = append(opts, nats.UserInfo(s.User, s.Password))
	}
	if s.CA != "" || s.Cert != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if s.CA != "" {
			pem, err := os.ReadFile(s.CA)
			if err != nil {
				return nil, fmt.Errorf("-nats-ca: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("-nats-ca %s: no PEM certificate in it", s.CA)
			}
		}
		if s.Cert != "" {
			cert, err := tls.LoadX509KeyPair(s.Cert, s.Key)
			if err != nil {
				return nil, fmt.Errorf("-nats-cert %s with -nats-key %s: %w", s.Cert, s.Key, err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, nats.Secure(cfg))
	}
	return opts, nil
}

// joinCluster joins the cluster named by -nats, reporting to m; nil without -nats. It does not wait
// for NATS: the node serves its own clients meanwhile and /readyz says it is not ready.
func (s *clusterSettings) joinCluster(logger *slog.Logger, m *metrics.Metrics) (*natsengine.Cluster, error) {
	if !s.on() {
		return nil, nil
	}
	opts, err := s.natsOptions()
	if err != nil {
		return nil, err
	}
	urls := splitList(s.URLs)
	c, err := natsengine.JoinCluster(natsengine.ClusterConfig{
		URLs: urls, NodeName: s.nodeName(), Options: opts, Logger: logger,
		ObserveLatency: m.BackplaneLatency,
	})
	if err != nil {
		return nil, err
	}
	m.ObserveCluster(func() metrics.ClusterStats {
		st := c.Stats()
		return metrics.ClusterStats{
			Connected: st.Connected, Reconnects: st.Reconnects, Nodes: st.Nodes,
			MessagesIn: st.MessagesIn, MessagesOut: st.MessagesOut, Failed: st.FailedOut, Dropped: st.Dropped,
		}
	})
	logger.Info("cluster", "nats", redactURLs(urls), "node", s.nodeName(), "origin", c.Origin())
	return c, nil
}

// redactURL hides the password of a URL with user information.
func redactURL(u string) string {
	scheme := strings.Index(u, "://")
	at := strings.LastIndexByte(u, '@')
	if scheme < 0 || at < scheme {
		return u
	}
	return u[:scheme+3] + "***" + u[at:]
}

// clusterProblem says why the node is not ready for its cluster, or "": not connected to NATS yet,
// the connection lost for longer than grace, or closed for good (at once: it does not come back).
func clusterProblem(c *natsengine.Cluster, grace time.Duration) string {
	if c.Connected() {
		return ""
	}
	if err := c.ConnectionClosed(); err != nil {
		return fmt.Sprintf("cluster: NATS connection closed for good (%v); restart the node", err)
	}
	lost := c.DisconnectedSince()
	if lost.IsZero() {
		return "cluster: not connected to NATS yet"
	}
	if d := time.Since(lost); d > grace {
		return fmt.Sprintf("cluster: NATS connection lost %s ago", d.Round(time.Second))
	}
	return ""
}

// shareFigures sends this node's figures for operators with its cluster heart-beats and shows the
// other nodes' in the management API (GET /api/nodes, the overview's cluster totals). A node that
// sends none (its API is off) is listed by name alone.
func shareFigures(cluster *natsengine.Cluster, api *admin.API) {
	cluster.SetFigures(func() json.RawMessage {
		data, _ := json.Marshal(api.Figures())
		return data
	})
	api.SetPeers(func() []admin.NodeFigures {
		peers := cluster.Peers()
		out := make([]admin.NodeFigures, 0, len(peers))
		for _, p := range peers {
			var f admin.NodeFigures
			if json.Unmarshal(p.Figures, &f) != nil {
				f = admin.NodeFigures{Started: p.Started, AsOf: p.Seen}
			}
			f.Name, f.This = p.Name, false
			out = append(out, f)
		}
		return out
	})
}
