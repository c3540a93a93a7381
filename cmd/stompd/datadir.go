package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/broker/natsengine"
	"github.com/stompd/stompd/metrics"
)

// dataSync is the -data-sync flag: "always" (every stored message reaches the disk before it is
// acknowledged) or the interval at which stored messages are flushed to the disk.
type dataSync struct {
	always   bool
	interval time.Duration
}

func (d *dataSync) String() string {
	if d.always {
		return "always"
	}
	return d.interval.String()
}

func (d *dataSync) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "always" {
		d.always, d.interval = true, 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return errors.New("want always or a positive duration such as 1s or 200ms")
	}
	d.always, d.interval = false, v
	return nil
}

// startStore starts the embedded store on -data-dir, reporting to m; nil without one.
func (c *config) startStore(logger *slog.Logger, m *metrics.Metrics, retainedPerDestination int) (*natsengine.Engine, error) {
	if c.DataDir == "" {
		return nil, nil
	}
	e, err := natsengine.Start(natsengine.Config{
		Dir:           c.DataDir,
		SyncAlways:    c.DataSync.always,
		SyncInterval:  c.DataSync.interval,
		MaxStoreBytes: int64(c.MaxStoreBytes),
		Logger:        logger,

		RetainedPerDestination: retainedPerDestination,
		ObserveWrite:           m.StoreWrite,
		ObserveFailure: func(op string) {
			if op == "ack" {
				m.StoreFailed(metrics.StoreAck)
			} else {
				m.StoreFailed(metrics.StoreFetch)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	limit := int64(c.MaxStoreBytes)
	m.ObserveStore(func() metrics.StoreStats {
		u, _ := e.Usage()
		st := metrics.StoreStats{LimitBytes: limit}
		for kind, k := range map[metrics.StoreKind]natsengine.KindUsage{
			metrics.StoreQueue: u.Queues, metrics.StoreStream: u.Streams, metrics.StoreRetained: u.Retained,
		} {
			st.Messages[kind], st.Bytes[kind] = k.Messages, k.Bytes
		}
		return st
	})
	logger.Info("data directory", "dir", e.Dir(), "sync", c.DataSync.String(), "max_store_bytes", int64(c.MaxStoreBytes),
		"started_in", e.StartDuration().Round(time.Millisecond).String())
	return e, nil
}

// mostRetained is the most messages any of policies retains per destination (0 when none retains).
func mostRetained(policies []broker.DestinationPolicy) int {
	most := 0
	for _, p := range policies {
		switch {
		case p.History > 0:
			most = max(most, p.History)
		case p.LastValue:
			most = max(most, 1)
		}
	}
	return most
}

// modeName is the mode in one word: memory, durable or cluster.
func (c *config) modeName() string {
	switch {
	case c.Cluster.on():
		return "cluster"
	case c.DataDir != "":
		return "durable"
	}
	return "memory"
}

// storeMode is what -check-config and the start-up line say about where queues, streams, durable
// subscriptions and retained messages live.
func (c *config) storeMode() string {
	if c.Cluster.on() {
		return fmt.Sprintf("cluster: node %s on NATS %s; topics reach every node; queues, streams, durable subscriptions and retained messages on the cluster's JetStream (%d replicas)",
			c.Cluster.nodeName(), redactURLs(splitList(c.Cluster.URLs)), c.Cluster.Replicas)
	}
	if c.DataDir == "" {
		return "memory: queues, streams and retained messages are lost on restart"
	}
	return fmt.Sprintf("durable: queues, streams and retained messages stored in %s (sync %s)", c.DataDir, c.DataSync.String())
}

// redactURLs writes URLs without their passwords.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = redactURL(u)
	}
	return strings.Join(out, ",")
}
