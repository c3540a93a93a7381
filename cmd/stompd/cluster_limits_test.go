package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/stompd/stompd/broker/natsengine"
)

// -check-config shows the -nats URLs without their passwords, as the log does.
func TestCheckConfigRedactsNATSPassword(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), []string{"-check-config", "-nats", "nats://user:s3cret@host1:4222, tls://tok3n@host2:4222"},
		env(nil), &out, io.Discard, nil)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if strings.Contains(out.String(), "s3cret") || strings.Contains(out.String(), "tok3n") {
		t.Errorf("-check-config shows a NATS password:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "nats://***@host1:4222,tls://***@host2:4222") {
		t.Errorf("-check-config lacks the redacted URLs:\n%s", out.String())
	}
}

// A NATS connection closed for good makes the node not ready at once, saying so, whatever the grace.
func TestClusterProblemConnectionClosed(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	var conn atomic.Pointer[nats.Conn]
	c, err := natsengine.JoinCluster(natsengine.ClusterConfig{URLs: []string{s.ClientURL()}, NodeName: "a",
		Options: []nats.Option{func(o *nats.Options) error {
			// Keep the connection for the test, and make its closing known to it.
			connected := o.ConnectedCB
			o.ConnectedCB = func(nc *nats.Conn) { conn.Store(nc); connected(nc) }
			return nil
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for (clusterProblem(c, time.Hour) != "" || conn.Load() == nil) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p := clusterProblem(c, time.Hour); p != "" || conn.Load() == nil {
		t.Fatalf("connected: %q", p)
	}
	_ = conn.Load().Publish(strings.Repeat("x", 5000), nil) // past max_control_line: the server closes it
	for clusterProblem(c, time.Hour) == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p := clusterProblem(c, time.Hour); !strings.Contains(p, "closed for good") {
		t.Errorf("clusterProblem = %q, want the connection closed for good", p)
	}
}
