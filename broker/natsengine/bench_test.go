package natsengine

import (
	"testing"
	"time"

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

// BenchmarkStoredStream publishes to a stored stream destination, each publish waiting until stored
// (one op is one message), then reads the stream back from the first offset, through the store beyond
// the newest 1,024 messages the broker keeps in memory, reported as replayed msgs/s.
func BenchmarkStoredStream(b *testing.B) {
	e, err := Start(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	br := broker.New(broker.Options{Streams: e, Policies: []broker.DestinationPolicy{{Pattern: "/topic/log", Stream: true}}})
	body := make([]byte, 128)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := br.Publish(&broker.Message{Destination: "/topic/log", Body: body}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	c := &consumer{}
	begin := time.Now()
	if _, err := br.Subscribe("/topic/log", c, broker.SubscribeOptions{From: &broker.StreamStart{Kind: broker.StartFirst}}); err != nil {
		b.Fatal(err)
	}
	c.wait(b, b.N)
	b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "replayed-msgs/s")
}
