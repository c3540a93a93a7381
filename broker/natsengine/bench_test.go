package natsengine

import (
	"testing"

	"github.com/stompd/stompd/broker"
)

// BenchmarkStoredQueue publishes to a stored queue (each publish returns once stored, as a SEND with a
// receipt waits) and consumes with auto-ack, with each -data-sync setting; one op is one message in and
// out.
func BenchmarkStoredQueue(b *testing.B) {
	for _, sync := range []string{"interval", "always"} {
		b.Run("sync="+sync, func(b *testing.B) {
			e, err := Start(Config{Dir: b.TempDir(), SyncAlways: sync == "always"})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			br := broker.New(broker.Options{Store: e, MaxQueueDepth: 1 << 30, MaxQueueBytes: 1 << 40})
			c := &consumer{}
			if _, err := br.Subscribe("/queue/bench", c, broker.SubscribeOptions{}); err != nil {
				b.Fatal(err)
			}
			body := make([]byte, 128)
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := br.Publish(&broker.Message{Destination: "/queue/bench", Body: body}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			c.wait(b, b.N)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
