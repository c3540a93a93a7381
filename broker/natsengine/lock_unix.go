//go:build unix

package natsengine

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on f that ends with the process; it reports errLocked when another
// process holds it.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}
