//go:build unix

package transport

import "syscall"

// canReadRaw reports whether socketReader can read a socket itself.
const canReadRaw = true

// attempt is called by syscall.RawConn.Read with the socket. It reads what has arrived into a
// borrowed buffer and reports true; when nothing has arrived it gives the buffer back before the
// runtime parks the goroutine until the socket is readable, and reports false to be called again then.
func (s *socketReader) attempt(fd uintptr) bool {
	if s.buf == nil {
		s.buf = getReadBuffer()
	}
	for {
		n, err := syscall.Read(int(fd), s.buf[:])
		switch err {
		case nil:
			s.r, s.w = 0, n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			putReadBuffer(s.buf)
			s.buf = nil
			return false
		}
		s.r, s.w = 0, 0
		s.attemptErr = err
		return true
	}
}
