package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLint runs promlint over everything New registers, with the scrape-time gauges populated.
func TestLint(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.ObserveBroker(func() BrokerStats { return BrokerStats{ReadyMessages: 1} })
	m.ObserveQueueDepth([]string{"/queue/a"}, func(string) (int, int, bool) { return 1, 0, true })
	m.ObserveDeliveryLatency(1)

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		name := mf.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		if !strings.HasPrefix(name, "stompd_") {
			t.Errorf("%s: not under the stompd_ prefix", name)
		}
	}
}
