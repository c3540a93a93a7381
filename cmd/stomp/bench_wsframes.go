package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"

	"github.com/coder/websocket"
)

// rawWSStream is the load tool's WebSocket data path over ws:// (not wss://): the library makes the
// opening handshake, then the tool frames and unframes the STOMP byte stream itself on the TCP socket
// (RFC 6455 §5). Per message the library's reader takes a lock, checks a context and hands out a
// reader; at the rates a benchmark delivers, that cost the tool's WebSocket receivers more CPU than
// their TCP counterparts spent on the whole delivery, on the same two cores as the broker under test.
//
// The socket carries nothing but frames from the end of the handshake: a STOMP broker speaks only
// after the CONNECT the tool sends next, so the library has read nothing past the handshake response.
//
// Read must be called from one goroutine at a time (the connection's reader), Write from one at a
// time (its publisher, or its receiver sending ACKs); Read may write a pong meanwhile, under wmu.
// Close may be called from any goroutine.
type rawWSStream struct {
	ws  *websocket.Conn // closed by Close; otherwise unused after the handshake
	raw net.Conn

	// Read state, carried across reads since a frame header may be split between two.
	header     [14]byte // the frame header being collected
	headerLen  int      // bytes of it collected so far
	payload    uint64   // payload bytes of the current frame still to come
	opcode     byte     // the current frame's opcode
	fragmented bool     // a data message has begun and its final frame has not come
	control    []byte   // the payload of the current control frame, collected whole
	closed     error    // set by a close frame: returned once the bytes before it have been

	wmu  sync.Mutex
	wbuf []byte
}

// WebSocket opcodes and header bits (RFC 6455 §5.2).
const (
	wsOpContinuation = 0x0
	wsOpText         = 0x1
	wsOpBinary       = 0x2
	wsOpClose        = 0x8
	wsOpPing         = 0x9
	wsOpPong         = 0xa
	wsFinBit         = 0x80
	wsRSVBits        = 0x70
	wsMaskBit        = 0x80
	wsMaxControl     = 125
)

var (
	// errWSProtocol reports a frame the broker should not have sent.
	errWSProtocol = errors.New("WebSocket protocol error from the broker")
	// errNoCloseFrame reports a connection that ended without a close frame (RFC 6455 §7.1.5: status
	// 1006), unlike the orderly end a normal closure reads as.
	errNoCloseFrame = fmt.Errorf("the broker dropped the WebSocket without a close frame: %w", io.ErrUnexpectedEOF)
)

func newRawWSStream(ws *websocket.Conn, raw net.Conn) *rawWSStream {
	return &rawWSStream{ws: ws, raw: raw}
}

// Read returns the payload bytes of data frames, in order and without message boundaries, reading
// from the socket into p and compacting it in place. Pings are answered; a close frame ends the
// stream as wsStream's Read does (io.EOF for a normal closure, an error naming any other), and the
// socket's end without one is errNoCloseFrame.
func (s *rawWSStream) Read(p []byte) (int, error) {
	for {
		if s.closed != nil {
			return 0, s.closed
		}
		n, err := s.raw.Read(p)
		if n > 0 {
			kept, ferr := s.unframe(p[:n])
			if ferr != nil {
				return 0, ferr
			}
			if kept > 0 {
				return kept, nil
			}
		}
		if errors.Is(err, io.EOF) {
			return 0, errNoCloseFrame
		}
		if err != nil {
			return 0, err
		}
	}
}

// unframe strips the framing from b, moving the data payload bytes to its front, and returns how many
// there are. Control frames are handled as they complete; nothing after a close frame is looked at.
func (s *rawWSStream) unframe(b []byte) (int, error) {
	kept, i := 0, 0
	for {
		if s.control != nil && s.payload == 0 {
			if err := s.endControl(); err != nil || s.closed != nil {
				return kept, err
			}
		}
		if i == len(b) {
			return kept, nil
		}
		if s.payload > 0 {
			take := int(min(uint64(len(b)-i), s.payload))
			if s.control != nil {
				s.control = append(s.control, b[i:i+take]...)
			} else {
				kept += copy(b[kept:], b[i:i+take])
			}
			i += take
			s.payload -= uint64(take)
			continue
		}
		s.header[s.headerLen] = b[i]
		s.headerLen++
		i++
		need, err := s.headerSize()
		if err != nil {
			return kept, err
		}
		if s.headerLen == need {
			if err := s.beginFrame(); err != nil {
				return kept, err
			}
		}
	}
}

// headerSize returns the length of the header being collected once its first two bytes say it.
func (s *rawWSStream) headerSize() (int, error) {
	if s.headerLen < 2 {
		return 2, nil
	}
	if s.header[1]&wsMaskBit != 0 {
		return 0, fmt.Errorf("%w: a masked frame", errWSProtocol)
	}
	switch s.header[1] & 0x7f {
	case 126:
		return 4, nil
	case 127:
		return 10, nil
	}
	return 2, nil
}

// beginFrame checks the complete header and sets up for the frame's payload.
func (s *rawWSStream) beginFrame() error {
	h := s.header[:s.headerLen]
	s.headerLen = 0
	if h[0]&wsRSVBits != 0 {
		return fmt.Errorf("%w: reserved bits set without an extension", errWSProtocol)
	}
	fin, op := h[0]&wsFinBit != 0, h[0]&0x0f
	switch length := uint64(h[1] & 0x7f); length {
	case 126:
		s.payload = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		s.payload = binary.BigEndian.Uint64(h[2:])
		if s.payload>>63 != 0 {
			return fmt.Errorf("%w: a payload length with its top bit set", errWSProtocol)
		}
	default:
		s.payload = length
	}
	switch op {
	case wsOpText, wsOpBinary:
		if s.fragmented {
			return fmt.Errorf("%w: a new message inside a fragmented one", errWSProtocol)
		}
		s.fragmented = !fin
	case wsOpContinuation:
		if !s.fragmented {
			return fmt.Errorf("%w: a continuation frame outside a message", errWSProtocol)
		}
		s.fragmented = !fin
	case wsOpClose, wsOpPing, wsOpPong:
		if !fin || s.payload > wsMaxControl {
			return fmt.Errorf("%w: a fragmented or oversized control frame", errWSProtocol)
		}
		s.control = make([]byte, 0, s.payload)
	default:
		return fmt.Errorf("%w: opcode %#x", errWSProtocol, op)
	}
	s.opcode = op
	return nil
}

// endControl acts on the control frame whose payload has just been collected.
func (s *rawWSStream) endControl() error {
	payload := s.control
	s.control = nil
	switch s.opcode {
	case wsOpPing:
		return s.writeFrame(wsOpPong, payload)
	case wsOpClose:
		ce := websocket.CloseError{Code: websocket.StatusNoStatusRcvd}
		if len(payload) >= 2 {
			ce.Code = websocket.StatusCode(binary.BigEndian.Uint16(payload))
			ce.Reason = string(payload[2:])
		}
		// Answer with the same status (§5.5.1), so that the broker's closing handshake ends now
		// rather than at its timeout; the connection is finished either way.
		_ = s.writeFrame(wsOpClose, payload[:min(len(payload), 2)])
		s.closed = closeAsEOF(ce)
		if s.closed == nil {
			s.closed = io.EOF
		}
	}
	return nil
}

// Write sends p as one text message: bench frames are ASCII.
func (s *rawWSStream) Write(p []byte) (int, error) {
	if err := s.writeFrame(wsOpText, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeFrame writes one final frame with the given opcode, masked as a client's must be (§5.3).
func (s *rawWSStream) writeFrame(op byte, p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b := append(s.wbuf[:0], wsFinBit|op)
	switch n := len(p); {
	case n <= 125:
		b = append(b, wsMaskBit|byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, wsMaskBit|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, wsMaskBit|127), uint64(n))
	}
	key := rand.Uint32() // math/rand/v2's generator is unpredictable, as a masking key must be
	b = binary.LittleEndian.AppendUint32(b, key)
	start := len(b)
	b = append(b, p...)
	maskBytes(b[start:], key)
	s.wbuf = b
	_, err := s.raw.Write(b)
	return err
}

// maskBytes XORs b with the masking key, whose first byte (the low one of key, as
// binary.LittleEndian wrote it) applies to b[0].
func maskBytes(b []byte, key uint32) {
	k8 := uint64(key) | uint64(key)<<32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k8)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(key >> (8 * (i % 4)))
	}
}

// Close drops the connection without the closing handshake, as wsStream's Close does.
func (s *rawWSStream) Close() error { return closeNow(s.ws) }
