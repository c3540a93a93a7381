package transport

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(idleClientEnv) != "" {
		os.Exit(runIdleClients())
	}
	// What stompwstest.VerifyTestMain does for the packages above, which this one cannot import.
	goleak.VerifyTestMain(m,
		// The parking poller lives as long as the process; idle workers exit a second after their last task.
		goleak.IgnoreAnyFunction("github.com/stompd/stompd/transport.(*poller).loop"),
		goleak.IgnoreAnyFunction("github.com/stompd/stompd/transport.(*workerPool).await"),
		goleak.Cleanup(func(code int) {
			// A parked reader holds no goroutine, so goleak cannot see one left behind.
			if n := ParkedReaders(); n > 0 && code == 0 {
				fmt.Fprintf(os.Stderr, "%d connections still parked after the tests\n", n)
				code = 1
			}
			os.Exit(code)
		}))
}
