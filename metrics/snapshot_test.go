package metrics

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestObserveBroker(t *testing.T) {
	m, reg := newTestMetrics(t)
	if n, err := testutil.GatherAndCount(reg, "stompd_subscriptions_current", "stompd_queue_messages"); err != nil || n != 0 {
		t.Fatalf("before ObserveBroker: %d series (err %v), want none", n, err)
	}

	var calls atomic.Int32
	m.ObserveBroker(func() BrokerStats {
		calls.Add(1)
		var st BrokerStats
		st.Subscriptions[KindTopic] = 7
		st.Subscriptions[KindQueue] = 2
		st.Destinations[KindTopic] = 3
		st.Destinations[KindApp] = 1
		st.ReadyMessages = 40
		st.UnackedMessages = 5
		return st
	})
	const want = `
# HELP stompd_destinations_current Destinations that currently exist, by kind.
# TYPE stompd_destinations_current gauge
stompd_destinations_current{kind="app"} 1
stompd_destinations_current{kind="queue"} 0
stompd_destinations_current{kind="reply_queue"} 0
stompd_destinations_current{kind="topic"} 3
# HELP stompd_queue_messages Messages held by queues: ready to deliver, or delivered and awaiting ACK/NACK. Totals over all queues.
# TYPE stompd_queue_messages gauge
stompd_queue_messages{state="ready"} 40
stompd_queue_messages{state="unacked"} 5
# HELP stompd_subscriptions_current Current subscriptions, by destination kind.
# TYPE stompd_subscriptions_current gauge
stompd_subscriptions_current{kind="app"} 0
stompd_subscriptions_current{kind="queue"} 2
stompd_subscriptions_current{kind="reply_queue"} 0
stompd_subscriptions_current{kind="topic"} 7
`
	calls.Store(0)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"stompd_subscriptions_current", "stompd_destinations_current", "stompd_queue_messages"); err != nil {
		t.Error(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("one scrape called the stats function %d times, want 1", n)
	}

	m.ObserveBroker(nil)
	if n, err := testutil.GatherAndCount(reg, "stompd_subscriptions_current"); err != nil || n != 0 {
		t.Errorf("after ObserveBroker(nil): %d series (err %v), want none", n, err)
	}
}

// messageCounterNames are the counter families read from BrokerStats.
var messageCounterNames = []string{
	"stompd_messages_published_total", "stompd_messages_delivered_total",
	"stompd_messages_redelivered_total", "stompd_messages_dropped_total",
}

// zeroMessageCounters is the exposition of the message counters before anything happened.
const zeroMessageCounters = `
# HELP stompd_messages_delivered_total Deliveries subscribers accepted, by destination kind; a fan-out to n subscribers counts n.
# TYPE stompd_messages_delivered_total counter
stompd_messages_delivered_total{kind="app"} 0
stompd_messages_delivered_total{kind="queue"} 0
stompd_messages_delivered_total{kind="reply_queue"} 0
stompd_messages_delivered_total{kind="topic"} 0
# HELP stompd_messages_dropped_total Messages not delivered, by why; slow_consumer counts subscriptions cut off.
# TYPE stompd_messages_dropped_total counter
stompd_messages_dropped_total{reason="conflated"} 0
stompd_messages_dropped_total{reason="dropped_oldest"} 0
stompd_messages_dropped_total{reason="durable_full"} 0
stompd_messages_dropped_total{reason="expired"} 0
stompd_messages_dropped_total{reason="no_route"} 0
stompd_messages_dropped_total{reason="slow_consumer"} 0
# HELP stompd_messages_published_total Messages accepted for routing, from clients and built-in publishers, by destination kind.
# TYPE stompd_messages_published_total counter
stompd_messages_published_total{kind="app"} 0
stompd_messages_published_total{kind="queue"} 0
stompd_messages_published_total{kind="reply_queue"} 0
stompd_messages_published_total{kind="topic"} 0
# HELP stompd_messages_redelivered_total Queue messages delivered again after a NACK or after their consumer went away.
# TYPE stompd_messages_redelivered_total counter
stompd_messages_redelivered_total 0
`

// TestMessageCountersFromBroker checks that the message counters are the broker's totals, read
// once per scrape, plus whatever the Message methods recorded, with every label value present.
func TestMessageCountersFromBroker(t *testing.T) {
	stats := func() BrokerStats {
		var st BrokerStats
		st.Published[KindTopic] = 1000
		st.Published[KindQueue] = 20
		st.Published[KindApp] = 3
		st.Delivered[KindTopic] = 250_000
		st.Delivered[KindQueue] = 21
		st.Delivered[KindReplyQueue] = 2
		st.Redelivered = 1
		st.Dropped[DropNoRoute] = 7
		st.Dropped[DropSlowConsumer] = 2
		st.Dropped[DropConflated] = 90
		st.Dropped[DropDroppedOldest] = 4
		st.Dropped[DropDurableFull] = 3
		return st
	}
	const fromBroker = `
# HELP stompd_messages_delivered_total Deliveries subscribers accepted, by destination kind; a fan-out to n subscribers counts n.
# TYPE stompd_messages_delivered_total counter
stompd_messages_delivered_total{kind="app"} 0
stompd_messages_delivered_total{kind="queue"} 21
stompd_messages_delivered_total{kind="reply_queue"} 2
stompd_messages_delivered_total{kind="topic"} 250000
# HELP stompd_messages_dropped_total Messages not delivered, by why; slow_consumer counts subscriptions cut off.
# TYPE stompd_messages_dropped_total counter
stompd_messages_dropped_total{reason="conflated"} 90
stompd_messages_dropped_total{reason="dropped_oldest"} 4
stompd_messages_dropped_total{reason="durable_full"} 3
stompd_messages_dropped_total{reason="expired"} 0
stompd_messages_dropped_total{reason="no_route"} 7
stompd_messages_dropped_total{reason="slow_consumer"} 2
# HELP stompd_messages_published_total Messages accepted for routing, from clients and built-in publishers, by destination kind.
# TYPE stompd_messages_published_total counter
stompd_messages_published_total{kind="app"} 3
stompd_messages_published_total{kind="queue"} 20
stompd_messages_published_total{kind="reply_queue"} 0
stompd_messages_published_total{kind="topic"} 1000
# HELP stompd_messages_redelivered_total Queue messages delivered again after a NACK or after their consumer went away.
# TYPE stompd_messages_redelivered_total counter
stompd_messages_redelivered_total 1
`
	tests := []struct {
		name    string
		observe func() BrokerStats // nil: no ObserveBroker call
		record  func(m *Metrics)
		want    string
	}{
		{name: "before ObserveBroker", want: zeroMessageCounters},
		{name: "from the broker", observe: stats, want: fromBroker},
		{
			name:    "after ObserveBroker(nil)",
			observe: stats,
			record:  func(m *Metrics) { m.ObserveBroker(nil) },
			want:    zeroMessageCounters,
		},
		{
			name:    "recorded counts add to the broker's",
			observe: stats,
			record: func(m *Metrics) {
				m.MessagePublished(KindTopic)
				m.MessageDelivered(KindApp)
				m.MessageRedelivered()
				m.MessageDropped(DropExpired)
				m.MessageDropped(DropExpired)
			},
			want: strings.NewReplacer(
				`published_total{kind="topic"} 1000`, `published_total{kind="topic"} 1001`,
				`delivered_total{kind="app"} 0`, `delivered_total{kind="app"} 1`,
				`redelivered_total 1`, `redelivered_total 2`,
				`{reason="expired"} 0`, `{reason="expired"} 2`,
			).Replace(fromBroker),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newTestMetrics(t)
			if tt.observe != nil {
				m.ObserveBroker(tt.observe)
			}
			if tt.record != nil {
				tt.record(m)
			}
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tt.want), messageCounterNames...); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestObserveQueueDepth(t *testing.T) {
	depths := map[string][2]int{"/queue/orders": {12, 3}, "/queue/audit": {0, 0}}
	depth := func(q string) (ready, unacked int, ok bool) {
		d, ok := depths[q]
		return d[0], d[1], ok
	}
	tests := []struct {
		name   string
		queues []string
		depth  func(string) (int, int, bool)
		want   string
	}{
		{
			name:   "listed queues that exist",
			queues: []string{"/queue/orders", "/queue/missing", "/queue/audit", "/queue/orders"},
			depth:  depth,
			want: `
# HELP stompd_queue_depth Messages held by one operator-listed queue: ready to deliver, or delivered and awaiting ACK/NACK.
# TYPE stompd_queue_depth gauge
stompd_queue_depth{queue="/queue/audit",state="ready"} 0
stompd_queue_depth{queue="/queue/audit",state="unacked"} 0
stompd_queue_depth{queue="/queue/orders",state="ready"} 12
stompd_queue_depth{queue="/queue/orders",state="unacked"} 3
`,
		},
		{name: "empty list", queues: nil, depth: depth},
		{name: "nil function", queues: []string{"/queue/orders"}, depth: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newTestMetrics(t)
			m.ObserveQueueDepth(tt.queues, tt.depth)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tt.want), "stompd_queue_depth"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestObserveQueueDepthKeepsItsOwnList(t *testing.T) {
	m, reg := newTestMetrics(t)
	queues := []string{"/queue/a"}
	m.ObserveQueueDepth(queues, func(string) (int, int, bool) { return 1, 0, true })
	queues[0] = "/queue/changed-later"
	if got := value(t, reg, "stompd_queue_depth", "queue", "/queue/a", "state", "ready"); got != 1 {
		t.Errorf("depth of /queue/a = %v, want 1", got)
	}
}

func TestObserveParkedConnections(t *testing.T) {
	m, reg := newTestMetrics(t)
	gauge := func() float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "stompd_connections_parked" {
				return f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("stompd_connections_parked not exported")
		return 0
	}
	if got := gauge(); got != 0 {
		t.Errorf("before ObserveParkedConnections: %v, want 0", got)
	}
	parked := 12
	m.ObserveParkedConnections(func() int { return parked })
	if got := gauge(); got != 12 {
		t.Errorf("gauge = %v, want 12", got)
	}
	parked = 3 // read again at each scrape
	if got := gauge(); got != 3 {
		t.Errorf("gauge = %v, want 3", got)
	}
	m.ObserveParkedConnections(nil)
	if got := gauge(); got != 0 {
		t.Errorf("after ObserveParkedConnections(nil): %v, want 0", got)
	}
}
