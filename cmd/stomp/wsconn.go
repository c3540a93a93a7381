package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// wsStream presents a WebSocket connection as the byte stream the STOMP client reads and writes.
// Unlike websocket.NetConn it accepts incoming messages of both types (a broker may send a frame
// with a binary body as a binary message), and it sends each write as a text message when it is
// valid UTF-8 and as a binary one otherwise. Message boundaries carry no meaning: STOMP frames
// delimit themselves.
//
// Read must be called from one goroutine at a time (the STOMP client's reader); Write and Close may
// be called from any.
type wsStream struct {
	conn *websocket.Conn
	msg  io.Reader // the message being read, nil between messages
}

func newWSStream(conn *websocket.Conn) *wsStream {
	// The STOMP client decides how much it buffers; a limit here would only cut a large frame in two
	// at an arbitrary point and close the connection.
	conn.SetReadLimit(-1)
	return &wsStream{conn: conn}
}

// Read returns bytes of the current message, moving on to the next message at the end of one. A
// normal close by the broker (status 1000) reads as io.EOF, as a TCP peer's orderly close does; any
// other close, going-away (1001) included, is an error that names its status and reason, since a
// broker going away may not have handled what was sent last.
func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.msg == nil {
			_, r, err := s.conn.Reader(context.Background())
			if err != nil {
				return 0, closeAsEOF(err)
			}
			s.msg = r
		}
		n, err := s.msg.Read(p)
		if errors.Is(err, io.EOF) {
			s.msg = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Write sends p as one WebSocket message.
func (s *wsStream) Write(p []byte) (int, error) {
	typ := websocket.MessageText
	if !utf8.Valid(p) {
		typ = websocket.MessageBinary
	}
	if err := s.conn.Write(context.Background(), typ, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close drops the connection without the WebSocket closing handshake, which could hold the command
// for up to ten seconds: by the time the client closes, STOMP's DISCONNECT receipt (or an ERROR) has
// already ended the conversation.
// A connection the broker has already closed is not an error here.
func (s *wsStream) Close() error { return closeNow(s.conn) }

// closeNow closes ws at once, without the closing handshake; a connection already closed is not an
// error.
func closeNow(ws *websocket.Conn) error {
	if err := ws.CloseNow(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// closeAsEOF maps a normal close to io.EOF, as a TCP peer's orderly close reads, and names the
// status and reason of any other close.
func closeAsEOF(err error) error {
	var ce websocket.CloseError
	switch {
	case !errors.As(err, &ce):
		return err
	case ce.Code == websocket.StatusNormalClosure:
		return io.EOF
	}
	return fmt.Errorf("the broker closed the WebSocket: %w", ce)
}
