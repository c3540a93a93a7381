package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/stompd/stompd/stompws/frame"
)

// The drain, after the publishers stop, waits for messages still in flight for as long as they keep
// arriving: it ends when every receiver has everything, when nothing has arrived for drainQuiet, or
// after drainLimit in all. What has not arrived by then counts as lost. A loaded broker may take
// many seconds to empty its queues, and a fixed wait would count as lost what is only late; a quiet
// spell ends the wait early for what will never come. drainLimit stays well inside the margin the
// default -timeout leaves after the measured phase.
const (
	drainQuiet = 2 * time.Second
	drainLimit = 30 * time.Second
)

// drainPoll is how often the drain checks whether everything has arrived.
const drainPoll = 5 * time.Millisecond

// dialParallelism is how many connections a run sets up at once.
const dialParallelism = 32

// fdHeadroom is the number of file descriptors a run keeps free besides one per connection.
const fdHeadroom = 64

// Phases of a run, for the progress line.
const (
	phaseConnecting int32 = iota
	phaseWarmup
	phaseMeasuring
	phaseDraining
	phaseHolding
	phaseDone
)

var phaseNames = [...]string{"connecting", "warm-up", "measuring", "draining", "holding", "done"}

// benchRun is one run of a scenario: its connections, publishers and receivers, the goroutines that
// drive them and the phase it is in. The goroutine that calls traffic or idle owns it; the progress
// line and test hooks read its atomic fields from other goroutines.
type benchRun struct {
	cfg    *benchConfig
	dialer *benchDialer
	// receiverDialers, when not empty, connect the receivers in turn (-receiver-urls).
	receiverDialers []*benchDialer
	runID           string // suffix that keeps destinations apart from other runs'

	phase      atomic.Int32
	phaseStart atomic.Int64 // clock when the phase began
	connected  atomic.Int64 // connections set up so far
	measuring  atomic.Bool  // receivers record latencies while set
	autoAcked  atomic.Bool  // queue consumers fell back to ack:auto on a broker that mishandles ACKs

	pubs  []*benchPublisher // set once, under mu, when the connections are up
	recvs []*receiver       // likewise

	fail    context.CancelCauseFunc // ends the run with an error
	stop    chan struct{}           // closed when publishers must stop
	closing atomic.Bool             // set before connections are closed on purpose
	readers sync.WaitGroup
	writers sync.WaitGroup

	mu    sync.Mutex
	conns []*benchConn // every connection opened, for shutdown

	shutdownOnce sync.Once
}

func newBenchRun(cfg *benchConfig, dialer *benchDialer) *benchRun {
	return &benchRun{cfg: cfg, dialer: dialer, runID: fmt.Sprintf("%08x", rand.Uint32()), stop: make(chan struct{})}
}

func (r *benchRun) setPhase(p int32) {
	r.phaseStart.Store(clockNanos())
	r.phase.Store(p)
}

// topology is who sends to and who receives from which destination.
type topology struct {
	pubDests  []string       // publisher i sends to pubDests[i]
	slots     []int          // flow slots of publisher i's flow
	window    int            // flow-control window of each publisher
	receivers []receiverSpec // one per subscribed connection
}

// receiverSpec is one subscriber: its destination, the publishers it hears (firstPub on, pubs of
// them) and its slot in their flows.
type receiverSpec struct {
	dest           string
	firstPub, pubs int
	slot           int
}

// topology lays out the scenario. On a queue every consumer shares slot 0 of each producer's flow,
// since each message reaches only one of them.
//
// -window bounds the messages in flight to any one receiver: a subscriber that hears several
// publishers (fanin) shares it among them, so that it never has more than -window messages queued
// for it at the broker, whose per-connection queue a fanin of 50 full windows would overflow. Queue
// producers each have the whole window, since the queue, not a connection, holds what is in flight.
func (r *benchRun) topology() topology {
	cfg := r.cfg
	dest := cfg.destPrefix + "." + r.runID
	t := topology{window: cfg.window}
	switch cfg.scenario.name {
	case "fanout", "latency":
		t.pubDests = []string{dest}
		t.slots = []int{cfg.subscribers}
		for i := range cfg.subscribers {
			t.receivers = append(t.receivers, receiverSpec{dest: dest, firstPub: 0, pubs: 1, slot: i})
		}
	case "fanin":
		for range cfg.publishers {
			t.pubDests = append(t.pubDests, dest)
			t.slots = append(t.slots, 1)
		}
		t.receivers = []receiverSpec{{dest: dest, firstPub: 0, pubs: cfg.publishers}}
		t.window = max(1, (cfg.window+cfg.publishers-1)/cfg.publishers)
	case "pairs":
		for k := range cfg.pairs {
			d := dest + "." + strconv.Itoa(k)
			t.pubDests = append(t.pubDests, d)
			t.slots = append(t.slots, 1)
			t.receivers = append(t.receivers, receiverSpec{dest: d, firstPub: k, pubs: 1})
		}
	case "queue":
		for range cfg.producers {
			t.pubDests = append(t.pubDests, dest)
			t.slots = append(t.slots, 1)
		}
		for range cfg.consumers {
			t.receivers = append(t.receivers, receiverSpec{dest: dest, firstPub: 0, pubs: cfg.producers})
		}
	}
	return t
}

// sample is the counters at one moment.
type sample struct {
	at        time.Time
	published int64
	delivered int64
	cpu       float64 // broker CPU seconds; 0 without -pid
}

func (r *benchRun) sample() (sample, error) {
	s := sample{at: time.Now()}
	for _, p := range r.pubs {
		s.published += p.sent.Load()
	}
	for _, rc := range r.recvs {
		s.delivered += rc.delivered.Load()
	}
	if r.cfg.pid != 0 {
		cpu, err := procCPUSeconds(r.cfg.pid)
		if err != nil {
			return s, fmt.Errorf("-pid %d: %w", r.cfg.pid, err)
		}
		s.cpu = cpu
	}
	return s, nil
}

// traffic runs a scenario that publishes: set up, warm up, measure, stop the publishers, drain,
// and account for every message.
func (r *benchRun) traffic(parent context.Context) (*benchReport, error) {
	ctx, fail := context.WithCancelCause(parent)
	defer fail(nil)
	r.fail = fail
	defer r.shutdown()

	top := r.topology()
	if err := checkOpenFiles(len(top.pubDests) + len(top.receivers)); err != nil {
		return nil, err
	}
	flows := make([]*flow, len(top.pubDests))
	for i := range flows {
		flows[i] = newFlow(int64(top.window), top.slots[i])
	}
	if err := r.connect(ctx, top, flows); err != nil {
		return nil, err
	}
	if r.cfg.hooks.started != nil {
		r.cfg.hooks.started(r)
	}
	start, end, rss, err := r.measure(ctx)
	if err != nil {
		return nil, err
	}
	r.setPhase(phaseDraining)
	close(r.stop)
	r.writers.Wait()
	if err := r.drain(ctx, flows); err != nil {
		return nil, err
	}
	r.shutdown()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	r.setPhase(phaseDone)

	rep := r.newReport(len(top.pubDests)+len(top.receivers), start, end)
	rep.BrokerRSSBytes = rss
	if r.autoAcked.Load() {
		rep.notes = append(rep.notes, "the broker is go-stomp's server, which mishandles ACKs: the queue consumers subscribed with ack:auto and sent no ACKs")
	}
	r.account(rep)
	return rep, nil
}

// connect sets up the receivers, then the publishers, and starts a read goroutine on each
// connection. Subscriptions come first, each confirmed in place (see benchConn.subscribe), so that
// none misses the first message.
func (r *benchRun) connect(ctx context.Context, top topology, flows []*flow) error {
	cfg := r.cfg
	r.setPhase(phaseConnecting)
	ack, prefetch := "auto", 0
	if cfg.scenario.queue {
		ack, prefetch = "client-individual", cfg.prefetch
	}
	recvConns, err := r.dialManyWith(ctx, len(top.receivers), r.receiverDialer, func(ctx context.Context, i int, c *benchConn) error {
		mode := ack
		if mode == "client-individual" {
			switch {
			case c.acksBroken:
				mode = "auto"
				r.autoAcked.Store(true)
			case c.version == frame.V10:
				mode = "client" // 1.0 knows no client-individual; acking every message comes to the same
			}
		}
		return c.subscribe(ctx, i, top.receivers[i].dest, mode, prefetch)
	})
	if err != nil {
		return err
	}
	pubConns, err := r.dialMany(ctx, len(top.pubDests), nil)
	if err != nil {
		return err
	}

	recvs := make([]*receiver, 0, len(top.receivers))
	for i, spec := range top.receivers {
		c := recvConns[i]
		c.buf = make([]byte, benchReadBuffer)
		rc := newReceiver(c, spec.firstPub, flows[spec.firstPub:spec.firstPub+spec.pubs], spec.slot, cfg.scenario.queue && !c.acksBroken, &r.measuring)
		rc.onDeliver = cfg.hooks.delivered
		recvs = append(recvs, rc)
		r.readers.Go(func() { r.failUnlessClosing(fmt.Sprintf("receiver %d", i), rc.readLoop()) })
	}
	rate := cfg.rate / float64(len(top.pubDests))
	pubs := make([]*benchPublisher, 0, len(top.pubDests))
	for i, dest := range top.pubDests {
		c := pubConns[i]
		p := newBenchPublisher(i, c, flows[i], dest, cfg.size, rate)
		p.confirm(cfg.receiptEvery, cfg.persistent)
		pubs = append(pubs, p)
		r.readers.Go(func() { r.failUnlessClosing(fmt.Sprintf("publisher %d", i), watchLoop(c, p.receipted)) })
	}
	r.mu.Lock()
	r.recvs, r.pubs = recvs, pubs
	r.mu.Unlock()
	return nil
}

// measure starts the publishers, lets them warm up, and samples the counters at the start and
// end of the measured phase, and the broker's RSS at its end. The publishers go on until r.stop
// is closed.
func (r *benchRun) measure(ctx context.Context) (start, end sample, rss *int64, err error) {
	r.setPhase(phaseWarmup)
	for i, p := range r.pubs {
		r.writers.Go(func() {
			if err := p.run(ctx, r.stop); err != nil {
				r.failUnlessClosing(fmt.Sprintf("publisher %d", i), err)
			}
		})
	}
	if sleepContext(ctx, r.cfg.warmup) != nil {
		return start, end, nil, context.Cause(ctx)
	}
	if start, err = r.sample(); err != nil {
		return start, end, nil, err
	}
	r.setPhase(phaseMeasuring)
	r.measuring.Store(true)
	if sleepContext(ctx, r.cfg.duration) != nil {
		return start, end, nil, context.Cause(ctx)
	}
	r.measuring.Store(false)
	if end, err = r.sample(); err != nil {
		return start, end, nil, err
	}
	rss, err = r.brokerRSS()
	return start, end, rss, err
}

// drain waits until every receiver has got everything its publishers sent, or the drain is over
// without (see drainQuiet).
func (r *benchRun) drain(ctx context.Context, flows []*flow) error {
	d := newDrainState(time.Now(), r.arrived())
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		settled := true
		for i, f := range flows {
			if !f.settled(r.pubs[i].sent.Load()) {
				settled = false
				break
			}
		}
		if d.over(time.Now(), r.arrived(), settled) {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// arrived is how many messages the receivers have got so far, all together.
func (r *benchRun) arrived() int64 {
	var n int64
	for _, rc := range r.recvs {
		n += rc.delivered.Load()
	}
	return n
}

// drainState decides when the drain is over, from what has arrived when. Owned by one goroutine.
type drainState struct {
	start        time.Time
	lastProgress time.Time // when arrived last grew
	arrived      int64
}

// newDrainState starts a drain at now, with arrived messages received before it.
func newDrainState(now time.Time, arrived int64) *drainState {
	return &drainState{start: now, lastProgress: now, arrived: arrived}
}

// over reports whether the drain is over at now, with arrived messages received so far and
// settled when every receiver has everything: once settled, after drainQuiet without a new
// arrival, or drainLimit after the start.
func (d *drainState) over(now time.Time, arrived int64, settled bool) bool {
	if settled {
		return true
	}
	if arrived != d.arrived {
		d.arrived = arrived
		d.lastProgress = now
	}
	return now.Sub(d.lastProgress) >= drainQuiet || now.Sub(d.start) >= drainLimit
}

// account fills in what the receivers' trackers say about every message sent: lost, duplicated,
// out of order, unaccountable, and the latencies.
func (r *benchRun) account(rep *benchReport) {
	published := make([]int64, len(r.pubs))
	for i, p := range r.pubs {
		published[i] = p.sent.Load()
	}
	if r.cfg.scenario.queue {
		for i := range r.pubs {
			var d sharedDelivery
			for _, rc := range r.recvs {
				d.add(&rc.trackers[i-rc.firstPub])
			}
			rep.Lost += d.lostFrom(published[i])
			rep.Duplicated += d.duplicated
			rep.OutOfOrder += d.outOfOrder
		}
	} else {
		for _, rc := range r.recvs {
			for k := range rc.trackers {
				t := &rc.trackers[k]
				rep.Lost += t.lostFrom(published[rc.firstPub+k])
				rep.Duplicated += t.duplicated
				rep.OutOfOrder += t.outOfOrder
			}
		}
	}
	hist := hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencyDigits)
	for _, rc := range r.recvs {
		hist.Merge(rc.hist)
		if rc.errors > 0 && rep.firstError == "" {
			rep.firstError = rc.firstBad
		}
		rep.Errors += rc.errors
	}
	if hist.TotalCount() > 0 {
		rep.LatencyMicros = &latencySummary{
			P50:  hist.ValueAtQuantile(50),
			P99:  hist.ValueAtQuantile(99),
			P999: hist.ValueAtQuantile(99.9),
			Max:  hist.Max(),
		}
	}
}

// idle runs the idle scenario: connect and subscribe every connection, hold them silent, and
// measure what they cost the broker.
func (r *benchRun) idle(parent context.Context) (*benchReport, error) {
	ctx, fail := context.WithCancelCause(parent)
	defer fail(nil)
	r.fail = fail
	defer r.shutdown()

	cfg := r.cfg
	if err := checkOpenFiles(cfg.connections); err != nil {
		return nil, err
	}
	before, err := r.brokerRSS()
	if err != nil {
		return nil, err
	}
	r.setPhase(phaseConnecting)
	dest := cfg.destPrefix + "." + r.runID
	connecting := time.Now()
	conns, err := r.dialMany(ctx, cfg.connections, func(ctx context.Context, _ int, c *benchConn) error {
		err := c.subscribe(ctx, 0, dest, "auto", 0)
		// Nothing more is read, so an idle connection keeps no buffer and no goroutine.
		c.buf, c.parser = nil, nil
		return err
	})
	if err != nil {
		return nil, err
	}
	connectsPerS := float64(len(conns)) / time.Since(connecting).Seconds()
	r.setPhase(phaseWarmup)
	if err := sleepContext(ctx, cfg.warmup); err != nil {
		return nil, context.Cause(ctx)
	}
	start, err := r.sample()
	if err != nil {
		return nil, err
	}
	r.setPhase(phaseHolding)
	if err := sleepContext(ctx, cfg.hold); err != nil {
		return nil, context.Cause(ctx)
	}
	end, err := r.sample()
	if err != nil {
		return nil, err
	}
	after, err := r.brokerRSS()
	if err != nil {
		return nil, err
	}
	rep := r.newReport(len(conns), start, end)
	for _, c := range conns {
		if why := peekIdle(c.raw); why != "" {
			if rep.Errors == 0 {
				rep.firstError = "an idle connection " + why
			}
			rep.Errors++
		}
	}
	r.shutdown()
	r.setPhase(phaseDone)
	rep.ConnectsPerS = &connectsPerS
	rep.BrokerRSSBytes = after
	if before != nil && after != nil {
		rep.BrokerRSSBeforeBytes = before
		per := (*after - *before) / int64(len(conns))
		rep.BrokerRSSPerConnectionBytes = &per
	}
	return rep, nil
}

// brokerRSS returns the broker's RSS, or nil without -pid.
func (r *benchRun) brokerRSS() (*int64, error) {
	if r.cfg.pid == 0 {
		return nil, nil
	}
	rss, err := procRSSBytes(r.cfg.pid)
	if err != nil {
		return nil, fmt.Errorf("-pid %d: %w", r.cfg.pid, err)
	}
	return &rss, nil
}

// dialMany opens n connections, dialParallelism at a time, and runs setup on each. The first
// failure stops the others and is returned.
func (r *benchRun) dialMany(ctx context.Context, n int, setup func(context.Context, int, *benchConn) error) ([]*benchConn, error) {
	return r.dialManyWith(ctx, n, func(int) *benchDialer { return r.dialer }, setup)
}

// receiverDialer is the dialer of receiver i: -url, or the -receiver-urls in turn.
func (r *benchRun) receiverDialer(i int) *benchDialer {
	if len(r.receiverDialers) == 0 {
		return r.dialer
	}
	return r.receiverDialers[i%len(r.receiverDialers)]
}

// dialManyWith is dialMany with connection i dialled by dialer(i).
func (r *benchRun) dialManyWith(ctx context.Context, n int, dialer func(int) *benchDialer, setup func(context.Context, int, *benchConn) error) ([]*benchConn, error) {
	conns := make([]*benchConn, n)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, dialParallelism) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := dialer(i).dial(ctx)
				if err == nil {
					r.track(c)
					if setup != nil {
						err = setup(ctx, i, c)
					}
				}
				if err != nil {
					cancel(err)
					return
				}
				conns[i] = c
				r.connected.Add(1)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return conns, nil
}

// track records a connection for shutdown.
func (r *benchRun) track(c *benchConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns = append(r.conns, c)
}

// failUnlessClosing ends the run with err from the named connection, unless the run is closing
// its connections itself.
func (r *benchRun) failUnlessClosing(who string, err error) {
	if r.closing.Load() {
		return
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("connection closed by the broker")
	}
	r.fail(fmt.Errorf("%s: %w", who, err))
}

// shutdown stops the publishers, closes every connection and waits for the run's goroutines.
func (r *benchRun) shutdown() {
	r.shutdownOnce.Do(func() {
		r.closing.Store(true)
		select {
		case <-r.stop:
		default:
			close(r.stop)
		}
		r.mu.Lock()
		conns := r.conns
		r.mu.Unlock()
		for _, c := range conns {
			c.close()
		}
		r.writers.Wait()
		r.readers.Wait()
	})
}
