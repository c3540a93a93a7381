package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/stompd/stompd/stompws/frame"
)

// disconnectAnswer is how a fake broker answers DISCONNECT.
type disconnectAnswer int

const (
	// answerReceipt sends the RECEIPT the DISCONNECT asked for, then closes normally.
	answerReceipt disconnectAnswer = iota
	// answerClose closes normally without a RECEIPT: WebSocket status 1000 "STOMP died", as
	// RabbitMQ 3.10's Web-STOMP does, or a TCP orderly close.
	answerClose
	// answerGoingAway closes the WebSocket with status 1001 without a RECEIPT.
	answerGoingAway
	// answerAbort closes the WebSocket with status 1011, or resets the TCP connection.
	answerAbort
	// answerError sends an ERROR frame, then closes normally.
	answerError
)

// fakeMessageBody is the body of the one MESSAGE a fake broker sends per subscription.
const fakeMessageBody = "hello"

// fakeStream is one client connection of a fake broker: read returns what the client sent next,
// write sends frames, and end closes the connection the way the answer says.
type fakeStream struct {
	read  func() ([]byte, error)
	write func([]byte) error
	end   func(disconnectAnswer)
}

// serveFakeSTOMP speaks enough STOMP 1.2 for pub and sub: CONNECTED for CONNECT, a RECEIPT for
// every frame that asks for one, and one MESSAGE per SUBSCRIBE. A DISCONNECT is answered as told,
// which ends the connection.
func serveFakeSTOMP(s fakeStream, answer disconnectAnswer) {
	p := frame.NewParser(frame.Limits{})
	var disconnectReceipt string
	var reply []byte
	emit := func(f *frame.Frame) error {
		if f == nil {
			return nil
		}
		receipt, hasReceipt := f.Get("receipt")
		switch f.Command {
		case frame.CONNECT, frame.STOMP:
			reply = append(reply, "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\x00"...)
			p.SetVersion(frame.V12)
			return nil
		case frame.SUBSCRIBE:
			id, _ := f.Get("id")
			dest, _ := f.Get("destination")
			reply = frame.AppendCommand(reply, frame.MESSAGE)
			reply = frame.AppendHeader(reply, frame.V12, []byte("destination"), dest)
			reply = frame.AppendHeader(reply, frame.V12, []byte("subscription"), id)
			reply = frame.AppendHeader(reply, frame.V12, "message-id", "m-1")
			reply = frame.AppendHeader(reply, frame.V12, "ack", "a-1")
			reply = frame.AppendBody(reply, []byte(fakeMessageBody))
		case frame.DISCONNECT:
			disconnectReceipt = string(receipt)
			return io.EOF // stop parsing: the connection ends here
		}
		if hasReceipt {
			reply = frame.AppendCommand(reply, frame.RECEIPT)
			reply = frame.AppendHeader(reply, frame.V12, []byte("receipt-id"), receipt)
			reply = frame.AppendBody(reply, nil)
		}
		return nil
	}
	for {
		b, err := s.read()
		if err != nil {
			return
		}
		reply = reply[:0]
		ferr := p.Feed(b, emit)
		if len(reply) > 0 {
			if err := s.write(reply); err != nil {
				return
			}
		}
		if errors.Is(ferr, io.EOF) {
			break
		}
		if ferr != nil {
			return
		}
	}
	switch answer {
	case answerReceipt:
		_ = s.write([]byte("RECEIPT\nreceipt-id:" + disconnectReceipt + "\n\n\x00"))
		answer = answerClose
	case answerError:
		_ = s.write([]byte("ERROR\nmessage:bye\n\n\x00"))
		answer = answerClose
	}
	s.end(answer)
}

// startFakeWSBroker serves serveFakeSTOMP over WebSocket and returns its ws:// URL.
func startFakeWSBroker(t *testing.T, answer disconnectAnswer) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var handlers sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: subprotocols})
		if err != nil {
			return
		}
		defer c.CloseNow()
		serveFakeSTOMP(fakeStream{
			read: func() ([]byte, error) {
				_, b, err := c.Read(ctx)
				return b, err
			},
			write: func(b []byte) error { return c.Write(ctx, websocket.MessageText, b) },
			end: func(a disconnectAnswer) {
				switch a {
				case answerClose:
					_ = c.Close(websocket.StatusNormalClosure, "STOMP died")
				case answerGoingAway:
					_ = c.Close(websocket.StatusGoingAway, "shutting down")
				case answerAbort:
					_ = c.Close(websocket.StatusInternalError, "boom")
				}
			},
		}, answer)
	}))
	t.Cleanup(func() {
		cancel()
		srv.Close()
		handlers.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

// startFakeTCPBroker serves serveFakeSTOMP over TCP and returns its tcp:// URL.
func startFakeTCPBroker(t *testing.T, answer disconnectAnswer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				buf := make([]byte, 4096)
				serveFakeSTOMP(fakeStream{
					read: func() ([]byte, error) {
						n, err := br.Read(buf)
						return buf[:n], err
					},
					write: func(b []byte) error {
						_, err := c.Write(b)
						return err
					},
					end: func(a disconnectAnswer) {
						tc := c.(*net.TCPConn)
						if a == answerAbort {
							_ = tc.SetLinger(0) // close with a reset
							return
						}
						// An orderly close: FIN, then wait for the client's, so that nothing
						// unread turns the close into a reset.
						_ = tc.CloseWrite()
						_, _ = io.Copy(io.Discard, br)
					},
				}, answer)
			})
		}
	})
	return "tcp://" + ln.Addr().String()
}

func TestDisconnectAnswers(t *testing.T) {
	// A broker may answer DISCONNECT by closing the connection normally instead of sending the
	// RECEIPT (RabbitMQ 3.10's Web-STOMP does). Everything pub and sub sent before was handled, so
	// they succeed; any other end of the connection, or an ERROR, is still a failure.
	commands := []struct {
		name       string
		stdin      string
		args       []string
		wantStdout string // on success
	}{
		{name: "pub", args: []string{"pub", "/queue/a", "x"}},
		{name: "pub lines", stdin: "a\nb\n", args: []string{"pub", "-lines", "/queue/a", "-"}},
		{name: "sub", args: []string{"sub", "-count", "1", "/queue/a"}, wantStdout: fakeMessageBody + "\n"},
	}
	cases := []struct {
		name       string
		ws         bool
		answer     disconnectAnswer
		wantCode   int
		wantStderr string
	}{
		{name: "ws receipt", ws: true, answer: answerReceipt, wantCode: exitOK},
		{name: "ws normal close without receipt", ws: true, answer: answerClose, wantCode: exitOK},
		{name: "ws going away", ws: true, answer: answerGoingAway, wantCode: exitFailure, wantStderr: "disconnect: connection lost: the broker closed the WebSocket: status = StatusGoingAway"},
		{name: "ws internal error", ws: true, answer: answerAbort, wantCode: exitFailure, wantStderr: "disconnect: connection lost: the broker closed the WebSocket: status = StatusInternalError"},
		{name: "ws ERROR", ws: true, answer: answerError, wantCode: exitFailure, wantStderr: "broker ERROR: bye"},
		{name: "tcp receipt", answer: answerReceipt, wantCode: exitOK},
		{name: "tcp orderly close without receipt", answer: answerClose, wantCode: exitOK},
		{name: "tcp reset", answer: answerAbort, wantCode: exitFailure, wantStderr: "disconnect: connection lost: "},
		{name: "tcp ERROR", answer: answerError, wantCode: exitFailure, wantStderr: "broker ERROR: bye"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := startFakeTCPBroker(t, tc.answer)
			if tc.ws {
				url = startFakeWSBroker(t, tc.answer)
			}
			for _, cmd := range commands {
				t.Run(cmd.name, func(t *testing.T) {
					args := append([]string{cmd.args[0], "-url", url}, cmd.args[1:]...)
					r := runStompWithin(t, cmd.stdin, args...)
					if r.code != tc.wantCode {
						t.Fatalf("exit %d, want %d (stderr %q)", r.code, tc.wantCode, r.stderr)
					}
					if tc.wantCode == exitOK {
						if r.stderr != "" || r.stdout != cmd.wantStdout {
							t.Errorf("stdout %q, stderr %q; want %q and nothing", r.stdout, r.stderr, cmd.wantStdout)
						}
						return
					}
					if !strings.Contains(r.stderr, tc.wantStderr) || strings.Count(r.stderr, "\n") != 1 {
						t.Errorf("stderr %q: want one line with %q", r.stderr, tc.wantStderr)
					}
				})
			}
		})
	}
}
