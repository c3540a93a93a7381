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

// peekReadable reports whether the socket fd has bytes to read, or an end or error to report, without
// consuming anything and without waiting; b is where the peeked byte lands.
func peekReadable(fd uintptr, b []byte) bool {
	for {
		_, _, err := syscall.Recvfrom(int(fd), b[:1], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err != syscall.EINTR {
			return err != syscall.EAGAIN
		}
	}
}
