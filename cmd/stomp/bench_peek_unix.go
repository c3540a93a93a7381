//go:build unix

package main

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// peekIdle looks, without blocking or consuming anything, at an idle connection's socket, which
// should have nothing to read: it returns "" when that holds, else what happened.
func peekIdle(c net.Conn) string {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return ""
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return "could not be checked: " + err.Error()
	}
	var n int
	var rerr error
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	switch {
	case err != nil:
		return "could not be checked: " + err.Error()
	case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK):
		return ""
	case rerr != nil:
		return "failed: " + rerr.Error()
	case n == 0:
		return "was closed by the broker"
	}
	return "received data from the broker while it should have been silent"
}

// checkOpenFiles fails when conns connections would not fit under the open-file limit.
func checkOpenFiles(conns int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // unknown: let the dials report it
	}
	limit := uint64(lim.Cur) // int64 on some systems (FreeBSD)
	if need := uint64(conns) + fdHeadroom; need > limit {
		return fmt.Errorf("%d connections need about %d open files, over this process's limit of %d (raise it with ulimit -n)", conns, need, limit)
	}
	return nil
}
