package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFramesSentAddsABatch(t *testing.T) {
	m := New(prometheus.NewRegistry(), BuildInfo{})
	m.FramesSent(CommandMessage, 3)
	m.FramesSent(CommandMessage, 0)  // ignored
	m.FramesSent(CommandMessage, -2) // ignored
	m.FrameSent(CommandMessage)
	if got := testutil.ToFloat64(m.framesSent[CommandMessage]); got != 4 {
		t.Fatalf("frames_sent_total{command=MESSAGE} = %v, want 4", got)
	}
	var off *Metrics
	off.FramesSent(CommandMessage, 1) // nil-safe
	if n := testing.AllocsPerRun(100, func() { m.FramesSent(CommandMessage, 2) }); n != 0 {
		t.Fatalf("FramesSent allocates %v times", n)
	}
}
