package frame

import "strconv"

// AppendCommand appends the command line "CMD\n" to dst and returns the extended slice.
func AppendCommand(dst []byte, command string) []byte {
	dst = append(dst, command...)
	return append(dst, '\n')
}

// AppendHeader appends "name:value\n", escaping name and value per v (V10: no escaping, but CR and
// LF, which 1.0 cannot carry, are replaced by spaces, and ':' in a name likewise; V11: \n : \\, with
// CR passed through raw since 1.1 has no escape for it, so a CR that ends a value reads back as
// part of the line's CRLF; V12: \r \n : \\). Callers pass V10 for CONNECT/CONNECTED, which are
// never escaped. A version other than V10 and V11 is treated as V12. It allocates only to grow dst.
func AppendHeader[T string | []byte](dst []byte, v Version, name, value T) []byte {
	dst = appendEscaped(dst, v, name, true)
	dst = append(dst, ':')
	dst = appendEscaped(dst, v, value, false)
	return append(dst, '\n')
}

// AppendBody appends the blank line that ends the headers, body, and the NUL that ends the frame:
// "\n" + body + "\x00". A body containing NUL must be announced by a content-length header.
func AppendBody(dst, body []byte) []byte {
	dst = append(dst, '\n')
	dst = append(dst, body...)
	return append(dst, 0)
}

// AppendHeartBeat appends a heart-beat, a single "\n", to be sent between frames.
func AppendHeartBeat(dst []byte) []byte { return append(dst, '\n') }

// AppendFrame encodes a whole frame: command, headers in order, then body. It adds a
// content-length header when body is non-empty and headers do not already contain one (an existing
// one is written as given, not checked). Header values escaped per v except for
// CONNECT/CONNECTED/STOMP commands, which are written as V10 ones are. It allocates only to grow
// dst.
func AppendFrame(dst []byte, v Version, command string, headers []Header, body []byte) []byte {
	if isHandshake(command) {
		v = V10
	}
	dst = AppendCommand(dst, command)
	hasLength := false
	for _, h := range headers {
		dst = AppendHeader(dst, v, h.Name, h.Value)
		hasLength = hasLength || string(h.Name) == "content-length"
	}
	if len(body) > 0 && !hasLength {
		dst = append(dst, "content-length:"...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, '\n')
	}
	return AppendBody(dst, body)
}
