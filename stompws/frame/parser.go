package frame

// Buffer sizes. A partial frame's buffer starts at minBufferBytes; a buffer larger than
// maxRetainedBufferBytes is dropped once its frame has been delivered, so that one large frame
// does not pin its memory for the life of the connection.
const (
	minBufferBytes         = 4 << 10
	maxRetainedBufferBytes = 64 << 10
)

// Parser is an incremental STOMP frame parser. Not safe for concurrent use: one goroutine (the
// connection's reader) feeds it. The zero value is not usable; call [NewParser].
type Parser struct {
	limits  Limits
	version Version

	// buf holds the bytes of the current partial frame, starting at its first byte, when a Feed
	// ended inside a frame. Empty otherwise: complete frames are parsed where they lie in Feed's
	// argument.
	buf []byte

	scan  frameScan // progress through the current frame, in offsets from its first byte
	frame Frame     // handed to emit; its Headers array is reused for every frame
	err   error     // sticky: once set, every Feed returns it
}

// NewParser returns a parser bounded by l (zero fields take their defaults, see
// [Limits.WithDefaults]). It unescapes headers as STOMP 1.2 until [Parser.SetVersion] says
// otherwise. It allocates no frame buffer until a Feed ends inside a frame.
func NewParser(l Limits) *Parser {
	p := &Parser{limits: l.WithDefaults(), version: V12}
	p.scan.reset()
	return p
}

// SetVersion selects header unescaping for frames parsed after the call (it may be called from
// inside the emit callback, e.g. right after CONNECT, and applies to the very next frame in the
// same Feed). Before any call the parser behaves as V12. CONNECT, STOMP and CONNECTED frames are
// never unescaped, whatever the version; V10 frames are never unescaped. A frame whose command
// line was already parsed when SetVersion is called keeps the version it started with. A value
// other than V10, V11 or V12 is treated as V12.
func (p *Parser) SetVersion(v Version) { p.version = v }

// Feed consumes b, which may hold part of a frame, exactly one frame, or many, and calls emit once
// per complete frame, in order. A heart-beat (an EOL, LF or CRLF, outside a frame, i.e. before a
// command line) is reported as emit(nil). Partial frames are kept across calls. Feed may modify b
// in place (unescaping), and the Frame passed to emit may alias b, so b must not be changed by
// anyone else while Feed runs. If emit returns an error, Feed stops and returns it. A protocol
// violation returns a *[ParseError]; after any error the parser is unusable and every later Feed
// returns the same error. emit must not call Feed or Reset.
func (p *Parser) Feed(b []byte, emit func(f *Frame) error) error {
	if p.err != nil {
		return p.err
	}
	for len(b) > 0 {
		if len(p.buf) == 0 {
			// Nothing buffered: parse straight out of b.
			n, done, err := p.scan.advance(b, p.limits, p.version)
			if err != nil {
				return p.fail(err)
			}
			if !done {
				p.keepTail(b)
				return nil
			}
			if err := p.deliver(b[:n], emit); err != nil {
				return p.fail(err)
			}
			b = b[n:]
			continue
		}

		// A frame is in progress in buf. Append no more of b than the current frame can still
		// legally take, and no further than the end of the line or body being read, so that the
		// buffer holds only bytes a limit has been checked against.
		prev := len(p.buf)
		chunk := p.scan.nextChunk(b, p.buf, p.limits)
		p.buf = grow(p.buf, len(chunk), p.ceiling())
		p.buf = append(p.buf, chunk...)
		n, done, err := p.scan.advance(p.buf, p.limits, p.version)
		if err != nil {
			return p.fail(err)
		}
		if !done {
			b = b[len(chunk):]
			continue
		}
		// The frame ended n-prev bytes into b (at the end of the chunk); the rest of b is parsed
		// in place.
		if err := p.deliver(p.buf[:n], emit); err != nil {
			return p.fail(err)
		}
		b = b[n-prev:]
		p.releaseBuffer()
	}
	return nil
}

// Buffered reports the bytes of the current partial frame held by the parser: zero between
// frames, and never more than Limits.MaxFrameBytes+1.
func (p *Parser) Buffered() int { return len(p.buf) }

// Reset drops buffered state, releases any large buffer, clears a sticky error and returns the
// parser to the state NewParser left it in (same limits, version V12), making it usable again.
func (p *Parser) Reset() {
	p.buf = p.buf[:0]
	p.releaseBuffer()
	p.scan.reset()
	p.clearFrame()
	p.version = V12
	p.err = nil
}

// fail makes err sticky.
func (p *Parser) fail(err error) error {
	p.err = err
	p.buf = p.buf[:0]
	p.releaseBuffer()
	p.clearFrame()
	return err
}

// deliver reports the frame just scanned in data (a heart-beat when no command was read) and
// prepares the scanner for the next frame.
func (p *Parser) deliver(data []byte, emit func(*Frame) error) error {
	var err error
	if p.scan.command == "" {
		err = emit(nil)
	} else {
		p.frame.Command = p.scan.command
		p.frame.Headers = p.scan.headers(data, p.frame.Headers[:0])
		p.frame.Body = data[p.scan.bodyStart:p.scan.bodyEnd:p.scan.bodyEnd]
		err = emit(&p.frame)
		p.clearFrame()
	}
	p.scan.reset()
	return err
}

// clearFrame drops the frame's references into the buffer or the caller's bytes, so that neither
// is kept reachable by the parser after the callback.
func (p *Parser) clearFrame() {
	clear(p.frame.Headers)
	p.frame.Headers = p.frame.Headers[:0]
	p.frame.Body = nil
}

// keepTail copies the unfinished frame at the start of b into the parser's buffer. The scanner has
// already checked every limit against these bytes, so they fit.
func (p *Parser) keepTail(b []byte) {
	p.buf = grow(p.buf[:0], len(b), p.ceiling())
	p.buf = append(p.buf, b...)
}

// ceiling is the most buffer the current frame can need: its announced length with the NUL when a
// content-length has fixed it, else the frame limit with the NUL. The buffer grows towards it by
// doubling rather than all at once, so a peer that announces a large body but sends nothing more
// holds little memory.
func (p *Parser) ceiling() int {
	if end, ok := p.scan.frameEnd(); ok {
		return end
	}
	return p.limits.MaxFrameBytes + 1
}

// releaseBuffer empties the buffer and drops it when it is large.
func (p *Parser) releaseBuffer() {
	if cap(p.buf) > maxRetainedBufferBytes {
		p.buf = nil
		return
	}
	p.buf = p.buf[:0]
}

// grow returns buf with room for n more bytes. Capacity doubles from minBufferBytes but stays
// within ceiling unless the bytes themselves need more, which the caller's chunking rules out.
// When one more doubling would pass the ceiling it goes straight to the ceiling, so that a frame
// just over a power of two does not cost a last reallocation of the whole buffer.
func grow(buf []byte, n, ceiling int) []byte {
	need := len(buf) + n
	if need <= cap(buf) {
		return buf
	}
	c := max(2*cap(buf), minBufferBytes)
	if 2*c > ceiling {
		c = ceiling
	}
	c = max(c, need)
	nb := make([]byte, len(buf), c)
	copy(nb, buf)
	return nb
}
