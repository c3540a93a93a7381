package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// serverFrame encodes one unmasked frame as a server sends it.
func serverFrame(first byte, payload []byte) []byte {
	b := []byte{first}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
	return append(b, payload...)
}

// chunkedConn hands out its input at most chunk bytes per Read and records what is written to it.
type chunkedConn struct {
	net.Conn // nil: only Read and Write are used
	in       []byte
	chunk    int
	out      bytes.Buffer
}

func (c *chunkedConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.in)
	c.in = c.in[n:]
	return n, nil
}

func (c *chunkedConn) Write(p []byte) (int, error) { return c.out.Write(p) }

// readAll reads s with a buffer of size until an error, returning the bytes and the error.
func readAll(s *rawWSStream, size int) ([]byte, error) {
	var got []byte
	buf := make([]byte, size)
	for {
		n, err := s.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

// unmaskClientFrames decodes the masked frames a client wrote, returning opcode and payload of each.
func unmaskClientFrames(t *testing.T, b []byte) (ops []byte, payloads [][]byte) {
	t.Helper()
	for len(b) > 0 {
		if b[0]&wsFinBit == 0 || b[1]&wsMaskBit == 0 {
			t.Fatalf("client frame %x: not final or not masked", b[:2])
		}
		n, at := uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			n, at = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			n, at = binary.BigEndian.Uint64(b[2:]), 10
		}
		key := b[at : at+4]
		p := append([]byte(nil), b[at+4:at+4+int(n)]...)
		for i := range p {
			p[i] ^= key[i%4]
		}
		ops, payloads = append(ops, b[0]&0x0f), append(payloads, p)
		b = b[at+4+int(n):]
	}
	return ops, payloads
}

// TestRawWSStreamUnframes: data frames of every length encoding, fragmented messages with control
// frames between their fragments, read through every split of the byte stream, come out as the
// payload bytes alone; a ping is answered with its payload; a normal close reads as io.EOF and is
// answered.
func TestRawWSStreamUnframes(t *testing.T) {
	medium := bytes.Repeat([]byte("m"), 300)
	large := bytes.Repeat([]byte("L"), 70000)
	var in, want []byte
	add := func(first byte, payload []byte) { in = append(in, serverFrame(first, payload)...) }
	add(wsFinBit|wsOpText, []byte("CONNECTED\n\n\x00"))
	want = append(want, "CONNECTED\n\n\x00"...)
	add(wsOpText, []byte("MESS")) // a fragmented message, a ping and a pong between its fragments
	add(wsFinBit|wsOpPing, []byte("are you there"))
	add(wsOpContinuation, []byte("AGE\n"))
	add(wsFinBit|wsOpPong, nil)
	add(wsFinBit|wsOpContinuation, []byte("\nbody\x00"))
	want = append(want, "MESSAGE\n\nbody\x00"...)
	add(wsFinBit|wsOpBinary, medium)
	add(wsFinBit|wsOpText, nil)
	add(wsFinBit|wsOpText, large)
	want = append(append(want, medium...), large...)
	add(wsFinBit|wsOpClose, binary.BigEndian.AppendUint16(nil, uint16(websocket.StatusNormalClosure)))
	add(wsFinBit|wsOpText, []byte("after the close")) // never read

	for _, chunk := range []int{1, 2, 3, 5, 13, 64, 4096, len(in)} {
		for _, size := range []int{1, 7, 512, 32 << 10} {
			conn := &chunkedConn{in: in, chunk: chunk}
			got, err := readAll(newRawWSStream(nil, conn), size)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("chunk %d, buffer %d: ended with %v, want io.EOF", chunk, size, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("chunk %d, buffer %d: read %d bytes, want %d", chunk, size, len(got), len(want))
			}
			ops, payloads := unmaskClientFrames(t, conn.out.Bytes())
			if len(ops) != 2 || ops[0] != wsOpPong || string(payloads[0]) != "are you there" ||
				ops[1] != wsOpClose || binary.BigEndian.Uint16(payloads[1]) != uint16(websocket.StatusNormalClosure) {
				t.Fatalf("chunk %d, buffer %d: wrote %v %q, want a pong with the ping's payload and a close 1000",
					chunk, size, ops, payloads)
			}
		}
	}
}

// TestRawWSStreamCloses: a close other than a normal closure is an error naming its status and
// reason; one without a status names that too; a socket that ends without a close frame is no
// orderly end.
func TestRawWSStreamCloses(t *testing.T) {
	for _, tc := range []struct {
		payload []byte
		code    websocket.StatusCode
	}{
		{append(binary.BigEndian.AppendUint16(nil, uint16(websocket.StatusGoingAway)), "restarting"...), websocket.StatusGoingAway},
		{nil, websocket.StatusNoStatusRcvd},
	} {
		in := append(serverFrame(wsFinBit|wsOpText, []byte("x")), serverFrame(wsFinBit|wsOpClose, tc.payload)...)
		got, err := readAll(newRawWSStream(nil, &chunkedConn{in: in, chunk: 3}), 64)
		var ce websocket.CloseError
		if string(got) != "x" || !errors.As(err, &ce) || ce.Code != tc.code || !strings.Contains(err.Error(), "broker closed") {
			t.Errorf("close %q: read %q then %v, want x then the broker's close %v", tc.payload, got, err, tc.code)
		}
		if tc.code == websocket.StatusGoingAway && ce.Reason != "restarting" {
			t.Errorf("close reason %q, want restarting", ce.Reason)
		}
	}
	in := serverFrame(wsFinBit|wsOpText, []byte("x"))
	if got, err := readAll(newRawWSStream(nil, &chunkedConn{in: in, chunk: 3}), 64); string(got) != "x" || !errors.Is(err, errNoCloseFrame) {
		t.Errorf("no close frame: read %q then %v, want x then errNoCloseFrame", got, err)
	}
}

// TestRawWSStreamRefusesBadFrames: every frame a server must not send ends the stream with
// errWSProtocol, after the data that came before it.
func TestRawWSStreamRefusesBadFrames(t *testing.T) {
	hugeLength := append([]byte{wsFinBit | wsOpText, 127}, 0x80, 0, 0, 0, 0, 0, 0, 1)
	for name, frame := range map[string][]byte{
		"masked":                      {wsFinBit | wsOpText, wsMaskBit | 1, 1, 2, 3, 4, 'x'},
		"reserved bit":                serverFrame(wsFinBit|0x40|wsOpText, []byte("x")),
		"unknown opcode":              serverFrame(wsFinBit|0x3, []byte("x")),
		"continuation with no start":  serverFrame(wsFinBit|wsOpContinuation, []byte("x")),
		"message inside a message":    append(serverFrame(wsOpText, []byte("x")), serverFrame(wsFinBit|wsOpText, []byte("y"))...),
		"fragmented control frame":    serverFrame(wsOpPing, nil),
		"oversized control frame":     serverFrame(wsFinBit|wsOpPing, bytes.Repeat([]byte("p"), 126)),
		"length with the top bit set": hugeLength,
	} {
		in := append(serverFrame(wsFinBit|wsOpText, []byte("ok")), frame...)
		s := newRawWSStream(nil, &chunkedConn{in: in, chunk: len(in)})
		buf := make([]byte, 64)
		n, err := s.Read(buf)
		if err == nil && string(buf[:n]) == "ok" {
			n, err = s.Read(buf)
		}
		if !errors.Is(err, errWSProtocol) {
			t.Errorf("%s: read %q, %v; want errWSProtocol", name, buf[:n], err)
		}
	}
}

// TestRawWSStreamWithTheLibrary: messages the stream writes reach a coder/websocket server intact
// (masking checked by the library), what the server sends comes back, the server's ping is answered
// while the stream reads, and the server's close ends the read with io.EOF and its handshake at once.
func TestRawWSStreamWithTheLibrary(t *testing.T) {
	sizes := []int{0, 5, 125, 126, 300, 0xffff, 70000}
	serverDone := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			serverDone <- err
			return
		}
		c.SetReadLimit(-1)
		serverDone <- func() error {
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			defer cancel()
			for _, n := range sizes {
				typ, p, err := c.Read(ctx)
				if err != nil {
					return err
				}
				if typ != websocket.MessageText || len(p) != n || !bytes.Equal(p, pattern(n)) {
					return errors.New("a message arrived changed")
				}
				if err := c.Write(ctx, websocket.MessageBinary, p); err != nil {
					return err
				}
			}
			// c.Ping needs a reader on this side for the pong; CloseRead stands for it.
			ctx = c.CloseRead(ctx)
			if err := c.Ping(ctx); err != nil {
				return err
			}
			started := time.Now()
			if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
				return err
			}
			if waited := time.Since(started); waited > 2*time.Second {
				return errors.New("the closing handshake waited for its timeout")
			}
			return nil
		}()
	}))
	defer srv.Close()

	var raw net.Conn
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		raw = c
		return c, err
	}}}
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	s := newRawWSStream(ws, raw)
	defer s.Close()

	read := make(chan []byte, 1)
	readErr := make(chan error, 1)
	go func() {
		got, err := readAll(s, 32<<10)
		read <- got
		readErr <- err
	}()
	var want []byte
	for _, n := range sizes {
		if _, err := s.Write(pattern(n)); err != nil {
			t.Fatal(err)
		}
		want = append(want, pattern(n)...)
	}
	if err := <-serverDone; err != nil {
		t.Fatalf("server: %v", err)
	}
	got := <-read
	if err := <-readErr; !errors.Is(err, io.EOF) {
		t.Fatalf("read ended with %v, want io.EOF", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want %d", len(got), len(want))
	}
}

// pattern returns n bytes of printable text that differ along their length.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}
