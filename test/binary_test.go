package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The stompd binary is built once per test run, on first use, into a temporary directory that
// TestMain removes at the end.
var stompdBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// stompdBinary returns the path of a freshly built ./cmd/stompd.
func stompdBinary(t *testing.T) string {
	t.Helper()
	b := &stompdBuild
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "stompd-bin-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "stompd")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.path, "./cmd/stompd")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./cmd/stompd: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// removeStompdBinary deletes the directory stompdBinary built into, if it built at all.
func removeStompdBinary() {
	if stompdBuild.dir != "" {
		os.RemoveAll(stompdBuild.dir)
	}
}

// stompdProcess is the stompd binary running as a child process, serving HTTP (the pages and /ws) on
// a loopback port and STOMP over TCP on another.
type stompdProcess struct {
	t        *testing.T
	HTTPAddr string   // 127.0.0.1:port; the same across restarts
	extra    []string // more command-line arguments; later flags win over the defaults above
	env      []string // more environment variables, NAME=value
	cmd      *exec.Cmd
	exited   chan struct{} // closed once the process has exited and its log is read
	waitErr  error         // the process's exit status; read after exited is closed

	mu  sync.Mutex
	log bytes.Buffer // the process's stderr: its JSON log
}

// startStompd starts the binary on a free loopback port and waits until it logs "stompd started". It is
// stopped when the test ends.
func startStompd(t *testing.T, extraArgs ...string) *stompdProcess {
	t.Helper()
	p := &stompdProcess{t: t, HTTPAddr: freeLoopbackAddr(t), extra: extraArgs}
	p.start()
	t.Cleanup(p.Stop)
	return p
}

// freeLoopbackAddr returns a loopback address with a port that was free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// URL is the base URL of the pages, http://127.0.0.1:port.
func (p *stompdProcess) URL() string {
	return "http://" + p.HTTPAddr
}

func (p *stompdProcess) start() {
	t := p.t
	t.Helper()
	p.mu.Lock()
	p.log.Reset()
	p.mu.Unlock()
	args := append([]string{"-http-addr", p.HTTPAddr, "-stomp-addr", "127.0.0.1:0", "-log-format", "json"}, p.extra...)
	p.cmd = exec.Command(stompdBinary(t), args...)
	if len(p.env) > 0 {
		p.cmd.Env = append(os.Environ(), p.env...)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	started := make(chan struct{})
	go p.readLog(stderr, started)
	select {
	case <-started:
	case <-p.exited:
		t.Fatalf("stompd exited before it started (%v); log:\n%s", p.waitErr, p.Log())
	case <-time.After(time.Minute):
		p.kill()
		t.Fatalf("stompd did not log %q within a minute; log:\n%s", "stompd started", p.Log())
	}
}

// readLog keeps the process's log and reports its "stompd started" line; it owns the Wait, which must
// come after the last read from the pipe.
func (p *stompdProcess) readLog(stderr io.Reader, started chan<- struct{}) {
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	signalled := false
	for sc.Scan() {
		line := sc.Bytes()
		p.mu.Lock()
		p.log.Write(line)
		p.log.WriteByte('\n')
		p.mu.Unlock()
		var entry struct {
			Msg string `json:"msg"`
		}
		if !signalled && json.Unmarshal(line, &entry) == nil && entry.Msg == "stompd started" {
			close(started)
			signalled = true
		}
	}
	p.waitErr = p.cmd.Wait()
	close(p.exited)
}

// Log returns what the current process has logged so far.
func (p *stompdProcess) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Stop sends SIGTERM and waits for a graceful exit (status 0). It may be called more than once.
func (p *stompdProcess) Stop() {
	p.t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("SIGTERM stompd: %v", err)
	}
	select {
	case <-p.exited:
		if p.waitErr != nil {
			p.t.Errorf("stompd exited with %v after SIGTERM; log:\n%s", p.waitErr, p.Log())
		}
	case <-time.After(time.Minute):
		p.kill()
		p.t.Errorf("stompd still running a minute after SIGTERM; killed. Log:\n%s", p.Log())
	}
}

func (p *stompdProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Restart stops the process gracefully and starts a new one on the same HTTP address.
func (p *stompdProcess) Restart() {
	p.t.Helper()
	p.Stop()
	p.start()
}

// clients returns a testServer whose client helpers (rawTCP, rawWS, dialTCP, dialWS) reach this
// process; stompAddr is the -stomp-addr it was started with. It has no Broker or Server.
func (p *stompdProcess) clients(stompAddr string) *testServer {
	return &testServer{WSURL: "ws://" + p.HTTPAddr + "/ws", HTTPURL: p.URL(), TCPAddr: stompAddr}
}
