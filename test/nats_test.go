package test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// natsBuild is the nats-server binary the cluster tests run: STOMPD_NATS_SERVER (test/run builds it
// from the version go.mod pins), or else built here once from the module cache.
var natsBuild struct {
	once      sync.Once
	dir, path string
	err       error
}

func natsServerBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("STOMPD_NATS_SERVER"); p != "" {
		return p
	}
	b := &natsBuild
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "nats-server-bin-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "nats-server")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.path, "github.com/nats-io/nats-server/v2")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// removeNATSBinary deletes what natsServerBinary built, if anything.
func removeNATSBinary() {
	if natsBuild.dir != "" {
		os.RemoveAll(natsBuild.dir)
	}
}

// natsProcess is a nats-server child process with JetStream on a data directory of its own, on fixed
// loopback ports that survive restarts; with routes it is one server of a NATS cluster.
type natsProcess struct {
	t           *testing.T
	name        string
	addr        string // client address, 127.0.0.1:port
	clusterAddr string // route address when in a cluster
	routes      []string
	extra       []string // more nats-server arguments
	dir         string
	cmd         *exec.Cmd
	exited      chan struct{}
	log         *lockedLog
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startNATS runs one nats-server with JetStream; it is stopped when the test ends.
func startNATS(t *testing.T) *natsProcess {
	t.Helper()
	n := &natsProcess{t: t, name: "n1", addr: freeLoopbackAddr(t), dir: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

// startNATSCluster runs size nats-servers routed into one cluster with JetStream.
func startNATSCluster(t *testing.T, size int) []*natsProcess {
	t.Helper()
	nodes := make([]*natsProcess, size)
	for i := range nodes {
		nodes[i] = &natsProcess{t: t, name: fmt.Sprintf("n%d", i+1), addr: freeLoopbackAddr(t), clusterAddr: freeLoopbackAddr(t), dir: t.TempDir()}
	}
	for _, n := range nodes {
		for _, o := range nodes {
			if o != n {
				n.routes = append(n.routes, "nats://"+o.clusterAddr)
			}
		}
	}
	for _, n := range nodes {
		n.start()
		t.Cleanup(n.stop)
	}
	return nodes
}

// URL is the server's client URL.
func (n *natsProcess) URL() string { return "nats://" + n.addr }

func (n *natsProcess) start() {
	t := n.t
	t.Helper()
	host, port, _ := net.SplitHostPort(n.addr)
	args := []string{"-a", host, "-p", port, "-n", n.name, "-js", "-sd", n.dir}
	args = append(args, n.extra...)
	if n.clusterAddr != "" {
		args = append(args, "--cluster_name", "stompd-test", "-cluster", "nats://"+n.clusterAddr, "-routes", strings.Join(n.routes, ","))
	}
	n.log = &lockedLog{}
	n.cmd = exec.Command(natsServerBinary(t), args...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", n.addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-n.exited:
			t.Fatalf("nats-server %s exited; log:\n%s", n.name, n.log)
		default:
		}
		if time.Now().After(deadline) {
			n.kill()
			t.Fatalf("nats-server %s not listening within 30 s; log:\n%s", n.name, n.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the server with SIGKILL.
func (n *natsProcess) kill() {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

func (n *natsProcess) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		n.kill()
	}
}
