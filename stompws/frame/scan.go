package frame

import (
	"bytes"
	"fmt"
	"strconv"
)

// stage is the part of a frame the scanner is in.
type stage uint8

const (
	stageCommand stage = iota // before the end of the command line (or of a heart-beat EOL)
	stageHeaders              // reading header lines, up to the blank line
	stageBody                 // after the blank line, looking for the terminating NUL
)

// headerSpan locates one unescaped header inside the frame's bytes. Offsets, not slices, because
// the buffer holding a partial frame may move when it grows.
type headerSpan struct{ nameStart, nameEnd, valueStart, valueEnd int }

// frameScan is the progress through one frame. All offsets count from the frame's first byte, so
// the scan survives the frame's bytes being copied from Feed's argument into the parser's buffer
// and resumes where it stopped: no byte is examined twice, however the frame is split.
type frameScan struct {
	stage     stage
	lineStart int // first byte of the line being read
	next      int // where the search for the next EOL or NUL resumes

	command   string
	escapes   Version // version whose escapes are undone in headers; 0 for none
	spans     []headerSpan
	length    int // content-length of the first such header, or -1 without one
	bodyStart int
	bodyEnd   int
}

// reset prepares for a new frame, keeping the spans array.
func (s *frameScan) reset() {
	*s = frameScan{spans: s.spans[:0], length: -1}
}

// advance scans data, the current frame's bytes from its first byte, from where the last call
// stopped. It returns done and the frame's length including its NUL (or the heart-beat's EOL)
// once the frame is complete. It checks every limit against the bytes seen so far, so an
// incomplete result means data may be kept: it holds at most MaxFrameBytes bytes, and a partial
// line of at most MaxHeaderBytes+1 bytes. Header lines are unescaped in place as they complete,
// using v when the command line is read.
func (s *frameScan) advance(data []byte, l Limits, v Version) (n int, done bool, err error) {
	for s.stage != stageBody {
		bound := min(len(data), s.lineStart+l.MaxHeaderBytes+2)
		i := bytes.IndexByte(data[s.next:bound], '\n')
		if i < 0 {
			return 0, false, s.partialLine(data, l)
		}
		eol := s.next + i
		s.next = eol + 1
		line := data[s.lineStart:eol]
		if k := len(line); k > 0 && line[k-1] == '\r' {
			line = line[:k-1]
		}
		if len(line) > l.MaxHeaderBytes {
			return 0, false, headerTooLong(l)
		}
		if s.stage == stageCommand && len(line) == 0 {
			return s.next, true, nil // heart-beat
		}
		if s.next > l.MaxFrameBytes {
			return 0, false, frameTooLarge(l)
		}
		switch {
		case s.stage == stageCommand:
			if err := s.readCommand(line, v); err != nil {
				return 0, false, err
			}
		case len(line) == 0:
			s.bodyStart = s.next
			s.stage = stageBody
			if s.length >= 0 && s.bodyStart+s.length > l.MaxFrameBytes {
				return 0, false, contentTooLarge(s.length, l)
			}
		default:
			if err := s.readHeader(s.lineStart, line, l); err != nil {
				return 0, false, err
			}
		}
		s.lineStart = s.next
	}

	if s.length >= 0 {
		end := s.bodyStart + s.length
		if len(data) <= end {
			return 0, false, nil
		}
		if data[end] != 0 {
			return 0, false, &ParseError{Err: ErrContentLengthMismatch,
				Detail: fmt.Sprintf("content-length is %d but byte %d of the body is %q", s.length, s.length, data[end])}
		}
		s.bodyEnd = end
		return end + 1, true, nil
	}
	bound := min(len(data), l.MaxFrameBytes+1)
	i := bytes.IndexByte(data[s.next:bound], 0)
	if i < 0 {
		if len(data) > l.MaxFrameBytes {
			return 0, false, frameTooLarge(l)
		}
		s.next = len(data)
		return 0, false, nil
	}
	s.bodyEnd = s.next + i
	return s.bodyEnd + 1, true, nil
}

// partialLine checks the unfinished line at the end of data against the limits. A line may reach
// MaxHeaderBytes+1 bytes only if its last byte is the CR of a CRLF.
func (s *frameScan) partialLine(data []byte, l Limits) error {
	n := len(data) - s.lineStart
	if n > l.MaxHeaderBytes+1 || n == l.MaxHeaderBytes+1 && data[len(data)-1] != '\r' {
		return headerTooLong(l)
	}
	if len(data) > l.MaxFrameBytes {
		return frameTooLarge(l)
	}
	s.next = len(data)
	return nil
}

// nextChunk returns the prefix of b to append to buf, the frame's bytes so far: no more than the
// frame can still legally take (plus the one byte that proves a limit exceeded), and no further
// than the EOL or NUL that ends the line or body being read. It is never empty when b is not and
// advance last reported buf incomplete.
func (s *frameScan) nextChunk(b, buf []byte, l Limits) []byte {
	if end, ok := s.frameEnd(); ok {
		return b[:min(len(b), end-len(buf))]
	}
	room, delim := l.MaxFrameBytes+1-len(buf), byte(0)
	if s.stage != stageBody {
		room, delim = min(room, s.lineStart+l.MaxHeaderBytes+2-len(buf)), '\n'
	}
	b = b[:min(len(b), room)]
	if i := bytes.IndexByte(b, delim); i >= 0 {
		return b[:i+1]
	}
	return b
}

// frameEnd returns the frame's length including its NUL once a content-length has fixed it.
func (s *frameScan) frameEnd() (int, bool) {
	if s.stage == stageBody && s.length >= 0 {
		return s.bodyStart + s.length + 1, true
	}
	return 0, false
}

// readCommand validates the command line and fixes the escaping for the frame's headers.
func (s *frameScan) readCommand(line []byte, v Version) error {
	cmd := lookupCommand(line)
	if cmd == "" {
		return &ParseError{Err: ErrInvalidCommand, Detail: quoteTruncated(line)}
	}
	s.command = cmd
	switch {
	case isHandshake(cmd) || v == V10:
		s.escapes = 0
	case v == V11:
		s.escapes = V11
	default:
		s.escapes = V12
	}
	s.stage = stageHeaders
	return nil
}

// readHeader splits, unescapes in place and records the header line that starts at offset start
// of the frame, and picks up the first content-length.
func (s *frameScan) readHeader(start int, line []byte, l Limits) error {
	if len(s.spans) >= l.MaxHeaders {
		return &ParseError{Err: ErrTooManyHeaders, Detail: "limit is " + strconv.Itoa(l.MaxHeaders) + " headers"}
	}
	colon := bytes.IndexByte(line, ':')
	switch {
	case colon < 0:
		return &ParseError{Err: ErrMalformedHeader, Detail: "no colon in " + quoteTruncated(line)}
	case colon == 0:
		return &ParseError{Err: ErrMalformedHeader, Detail: "empty name in " + quoteTruncated(line)}
	}
	name, value := line[:colon], line[colon+1:]
	if s.escapes != 0 {
		var err error
		if name, err = unescape(name, s.escapes); err != nil {
			return err
		}
		if value, err = unescape(value, s.escapes); err != nil {
			return err
		}
	}
	valueStart := start + colon + 1
	s.spans = append(s.spans, headerSpan{
		nameStart: start, nameEnd: start + len(name),
		valueStart: valueStart, valueEnd: valueStart + len(value),
	})
	if s.length < 0 && string(name) == "content-length" {
		// The body starts after at least one more EOL, so a length that cannot fit even then is
		// refused now, before any of it is buffered.
		n, ok, err := parseContentLength(value, l.MaxFrameBytes-(s.next+1))
		if err != nil {
			return err
		}
		if !ok {
			return &ParseError{Err: ErrFrameTooLarge,
				Detail: "content-length " + quoteTruncated(value) + " exceeds the limit of " + strconv.Itoa(l.MaxFrameBytes) + " bytes per frame"}
		}
		s.length = n
	}
	return nil
}

// headers appends the frame's headers, as slices of data, to dst.
func (s *frameScan) headers(data []byte, dst []Header) []Header {
	for _, h := range s.spans {
		dst = append(dst, Header{
			Name:  data[h.nameStart:h.nameEnd:h.nameEnd],
			Value: data[h.valueStart:h.valueEnd:h.valueEnd],
		})
	}
	return dst
}

// parseContentLength parses a content-length value of decimal digits only. ok is false when the
// value exceeds max; digits are all checked first, so a malformed value is reported as such
// however long it is, and the arithmetic stops before it could overflow.
func parseContentLength(b []byte, max int) (n int, ok bool, err error) {
	if len(b) == 0 {
		return 0, false, &ParseError{Err: ErrBadContentLength, Detail: "empty value"}
	}
	over := false
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false, &ParseError{Err: ErrBadContentLength, Detail: quoteTruncated(b)}
		}
		if !over {
			n = n*10 + int(c-'0')
			over = n > max
		}
	}
	return n, !over, nil
}

func headerTooLong(l Limits) error {
	return &ParseError{Err: ErrHeaderTooLong, Detail: "limit is " + strconv.Itoa(l.MaxHeaderBytes) + " bytes"}
}

func frameTooLarge(l Limits) error {
	return &ParseError{Err: ErrFrameTooLarge, Detail: "limit is " + strconv.Itoa(l.MaxFrameBytes) + " bytes"}
}

func contentTooLarge(length int, l Limits) error {
	return &ParseError{Err: ErrFrameTooLarge,
		Detail: "content-length \"" + strconv.Itoa(length) + "\" exceeds the limit of " + strconv.Itoa(l.MaxFrameBytes) + " bytes per frame"}
}

// truncate shortens peer-supplied text quoted in error details, which end up in logs and in the
// ERROR frame sent back.
func truncate(b []byte) []byte {
	const maxQuoted = 40
	if len(b) > maxQuoted {
		return b[:maxQuoted]
	}
	return b
}

func quoteTruncated(b []byte) string {
	q := strconv.Quote(string(truncate(b)))
	if len(b) > len(truncate(b)) {
		q += "..."
	}
	return q
}
