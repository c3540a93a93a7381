//go:build !unix

package natsengine

import "os"

// lockFile does nothing where flock does not exist: two processes on one directory are not detected.
func lockFile(*os.File) error { return nil }
