package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The idle-connection benchmarks hold many client connections in a child process, so that the
// clients' memory does not count as the server's. The child is this test binary, started again with
// idleClientEnv set; TestMain hands control to runIdleClients before any test runs.
const (
	idleClientEnv      = "STOMPD_IDLE_CLIENT"      // the mode: "ws" or "tcp"
	idleClientAddrEnv  = "STOMPD_IDLE_CLIENT_ADDR" // host:port of the server
	idleClientConnsEnv = "STOMPD_IDLE_CLIENT_CONNS"
	idleClientDest     = "/topic/idle"
)

// idleSourceIPs spread the clients over several loopback addresses: one source address has room for
// only about 28,000 connections to one server port in the default ephemeral port range.
var idleSourceIPs = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}

// IdleClients is a child process holding STOMP connections, each CONNECTed with heart-beats 0,0 and
// SUBSCRIBEd to /topic/idle (receipt received), then silent. It and the other exported names of this
// file serve the external test package, which runs a whole server.
type IdleClients struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// StartIdleClients starts the child process with n connections of kind "ws" (addr is host:port of an
// HTTP server serving STOMP over WebSocket at /ws) or "tcp", and returns once all of them are
// subscribed.
func StartIdleClients(tb testing.TB, kind, addr string, n int) *IdleClients {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), idleClientEnv+"="+kind, idleClientAddrEnv+"="+addr,
		idleClientConnsEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &IdleClients{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		c.Close()
		tb.Fatalf("idle clients did not get ready: %q %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	return c
}

// Close makes the child process drop its connections and waits for it to exit.
func (c *IdleClients) Close() {
	c.stdin.Close()
	_ = c.cmd.Wait()
}

// RaiseOpenFileLimit raises this process's limit on open files to at least n; child processes inherit
// it. Raising the hard limit takes CAP_SYS_RESOURCE: without it, the error says how far the limit goes.
func RaiseOpenFileLimit(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	want := lim
	want.Cur = n
	want.Max = max(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return fmt.Errorf("%d open files needed, the hard limit is %d and cannot be raised: %w", n, lim.Max, err)
	}
	return nil
}

// runIdleClients is the child process: it opens the connections, says "ready" on stdout, holds them
// until stdin is closed, then resets them all at once (no TIME_WAIT left to exhaust the port range).
func runIdleClients() int {
	kind, addr := os.Getenv(idleClientEnv), os.Getenv(idleClientAddrEnv)
	n, err := strconv.Atoi(os.Getenv(idleClientConnsEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "idle clients:", err)
		return 2
	}
	_ = RaiseOpenFileLimit(uint64(n) + 1024)
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	const dialers = 32
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for failed.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := dialIdleClient(kind, addr, idleSourceIPs[i%len(idleSourceIPs)])
				if err != nil {
					err = fmt.Errorf("connection %d: %w", i, err)
					failed.CompareAndSwap(nil, &err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		}
	}()
	if err := failed.Load(); err != nil {
		fmt.Fprintln(os.Stderr, "idle clients:", *err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT socket option; elsewhere setting it fails,
// which is harmless.
const ipBindAddressNoPort = 24

// idleClientFrames is what every client sends once connected: CONNECT without heart-beats, then one
// subscription whose receipt tells the client the broker has it.
const idleClientFrames = "CONNECT\naccept-version:1.2\nhost:/\nheart-beat:0,0\n\n\x00" +
	"SUBSCRIBE\nid:0\ndestination:" + idleClientDest + "\nreceipt:sub\n\n\x00"

func dialIdleClient(kind, addr, sourceIP string) (net.Conn, error) {
	d := net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(sourceIP)},
		Timeout:   30 * time.Second,
		// Choose the port at connect, not at bind: binding to port 0 scans the ephemeral range,
		// which takes longer the fuller it is.
		Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
		},
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	var buf [1024]byte
	var got []byte
	switch kind {
	case "ws":
		// A browser waits for the 101 before it sends frames; so does this client.
		fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
			"Sec-WebSocket-Protocol: v12.stomp\r\n\r\n", addr)
		got, err = readUntil(c, buf[:0], "\r\n\r\n")
		if err == nil && !bytes.HasPrefix(got, []byte("HTTP/1.1 101")) {
			err = fmt.Errorf("upgrade refused: %q", got)
		}
		if err == nil {
			_, err = c.Write(maskedTextFrame(idleClientFrames))
		}
	case "tcp":
		_, err = io.WriteString(c, idleClientFrames)
	default:
		err = fmt.Errorf("unknown kind %q", kind)
	}
	if err == nil {
		_, err = readUntil(c, got, "RECEIPT")
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// readUntil reads from c onto got until got contains marker.
func readUntil(c net.Conn, got []byte, marker string) ([]byte, error) {
	var buf [512]byte
	for !bytes.Contains(got, []byte(marker)) {
		n, err := c.Read(buf[:])
		got = append(got, buf[:n]...)
		if err != nil {
			return got, fmt.Errorf("reading until %q: %w (got %q)", marker, err, got)
		}
		if len(got) > 64<<10 {
			return got, errors.New("no " + marker + " in 64 KiB")
		}
	}
	return got, nil
}

// maskedTextFrame builds one client-to-server WebSocket text frame (RFC 6455 §5.2) carrying payload.
func maskedTextFrame(payload string) []byte {
	b := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, mask[:]...)
	for i := 0; i < len(payload); i++ {
		b = append(b, payload[i]^mask[i%4])
	}
	return b
}
