package transport

import (
	"encoding/binary"
	"net"
	"sync"
)

// The write path of a WebSocket connection. Data messages do not go through the library: each is one
// unfragmented frame whose header is written here, in one write call. The library still writes the
// control frames it sends on its own; wsWire keeps the two apart.

// writeBatch sends consecutive frames of the same message type as one WebSocket message, up to
// maxBatch bytes; STOMP peers parse any number of frames per message. A frame of line breaks alone (a
// heart-beat) is a message of its own: clients that tell heart-beats by a message holding nothing
// else, as stompjs 2.x and webstomp-client do, would otherwise take it for the start of the frame
// behind it and lose that frame.
func (c *wsConn) writeBatch(b *frameBatch) error {
	frames := b.frames
	for i := 0; i < len(frames); {
		first := &frames[i]
		total := first.size()
		j := i + 1
		if !b.lineBreaksOnly(first) {
			for j < len(frames) && frames[j].binary == first.binary && total+frames[j].size() <= c.maxBatch &&
				!b.lineBreaksOnly(&frames[j]) {
				total += frames[j].size()
				j++
			}
		}
		if err := c.writeMessage(b, i, j, total); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// writeMessage writes frames [from, to) of b, payload bytes in all, as one WebSocket message made of a
// single frame, in one write call: the header and the frames copied behind it when copyRun says so,
// otherwise, over TCP, one writev of header, heads and tails, so that a shared tail is never copied.
// Over TLS, a single frame too big to batch is written as header and head, then tail, rather than be
// copied.
func (c *wsConn) writeMessage(b *frameBatch, from, to, payload int) error {
	s := c.scratch()
	s.buf = appendMessageHeader(s.buf[:0], b.frames[from].binary, payload)
	header := len(s.buf)
	c.beginWrite()
	c.wire.mu.Lock()
	n, err := c.writeMessageLocked(s, b, from, to, payload)
	c.wire.mu.Unlock()
	c.endWrite(max(n-header, 0)) // framing is not counted
	return err
}

// writeMessageLocked does writeMessage's writes; s.buf holds the frame header. c.wire.mu must be held.
func (c *wsConn) writeMessageLocked(s *writeBuffers, b *frameBatch, from, to, payload int) (int, error) {
	if c.wire.closeSent {
		return 0, errCloseSent
	}
	if copyRun(to-from, payload) {
		s.buf = appendFrames(s.buf, b, from, to)
		return c.raw.Write(s.buf)
	}
	if c.vectored {
		s.iov = appendFrameIovecs(append(s.iov[:0], s.buf), b, from, to)
		c.iov = s.iov
		n, err := c.iov.WriteTo(c.raw)
		return int(n), err
	}
	f := &b.frames[from]
	if to > from+1 || payload <= c.maxBatch {
		s.buf = appendFrames(s.buf, b, from, to)
		return c.raw.Write(s.buf)
	}
	s.buf = append(s.buf, b.head(f)...)
	n, err := c.raw.Write(s.buf)
	if err != nil {
		return n, err
	}
	m, err := c.raw.Write(f.tail)
	return n + m, err
}

// wsWire serializes writes to the network connection between the writer goroutine, which writes data
// messages itself, and the WebSocket library, which writes the control frames it sends on its own
// (pong, close) through the bufio.Writer it got at the hijack. That writer holds a whole control frame,
// so each Write from the library is exactly one frame.
type wsWire struct {
	mu        sync.Mutex
	conn      net.Conn
	closeSent bool // a close frame went out: no data frame may follow it (RFC 6455 §5.5.1)
}

// Write implements io.Writer for the library's control frames.
func (w *wsWire) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(p) > 0 && p[0]&0x0f == wsOpClose {
		w.closeSent = true
	}
	return w.conn.Write(p)
}

// WebSocket opcodes (RFC 6455 §5.2) of the frames written or recognised here.
const (
	wsOpText   = 0x1
	wsOpBinary = 0x2
	wsOpClose  = 0x8
	wsFin      = 0x80
)

// appendMessageHeader appends the header of one unfragmented, unmasked server-to-client frame
// (RFC 6455 §5.2) carrying payload bytes.
func appendMessageHeader(dst []byte, isBinary bool, payload int) []byte {
	op := byte(wsOpText)
	if isBinary {
		op = wsOpBinary
	}
	dst = append(dst, wsFin|op)
	switch {
	case payload < 126:
		return append(dst, byte(payload))
	case payload <= 0xffff:
		return append(dst, 126, byte(payload>>8), byte(payload))
	}
	return binary.BigEndian.AppendUint64(append(dst, 127), uint64(payload))
}
