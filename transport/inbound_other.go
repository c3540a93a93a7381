//go:build !unix

package transport

// canReadRaw reports whether socketReader can read a socket itself: not on this platform, where it
// reads through the connection and holds no buffer of its own.
const canReadRaw = false

func (s *socketReader) attempt(fd uintptr) bool {
	panic("transport: raw socket reads are not supported")
}

func peekReadable(fd uintptr, b []byte) bool {
	panic("transport: raw socket reads are not supported")
}
