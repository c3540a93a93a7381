package stompwstest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/stompd/stompd/transport"
)

// VerifyTestMain runs a package's tests like goleak.VerifyTestMain, for packages whose tests serve
// connections: it allows the transport's parking poller, which lives as long as the process, and it
// fails the run when connections are left parked, since a parked connection holds no goroutine for
// goleak to find. cleanup, unless nil, runs before the process exits.
func VerifyTestMain(m *testing.M, cleanup func(), opts ...goleak.Option) {
	opts = append(opts,
		goleak.IgnoreAnyFunction("github.com/stompd/stompd/transport.(*poller).loop"),
		// Idle workers exit a second after their last task.
		goleak.IgnoreAnyFunction("github.com/stompd/stompd/transport.(*workerPool).await"),
		// The embedded NATS server's clock ticker (a store's, -data-dir) is process-wide: it ends once
		// the last file store has closed, which the server's shutdown does not wait for.
		natsClockTicker,
		goleak.Cleanup(func(code int) {
			if cleanup != nil {
				cleanup()
			}
			if n := transport.ParkedReaders(); n > 0 && code == 0 {
				fmt.Fprintf(os.Stderr, "%d connections still parked after the tests\n", n)
				code = 1
			}
			os.Exit(code)
		}))
	goleak.VerifyTestMain(m, opts...)
}

// natsClockTicker is the embedded NATS server's access-time goroutine; see VerifyTestMain.
var natsClockTicker = goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1")
