package broker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// orderChecker is a Subscriber that checks, per publisher and destination,
// that sequence numbers rise. With contiguous set it requires every message.
type orderChecker struct {
	contiguous bool

	mu    sync.Mutex
	last  map[string]int
	count int
	err   error
}

func newOrderChecker(contiguous bool) *orderChecker {
	return &orderChecker{contiguous: contiguous, last: make(map[string]int)}
}

func (c *orderChecker) Deliver(_ *Subscription, d Delivery) DeliverResult {
	pub, seq := d.Message.Header[0].Value, atoi(d.Message.Header[1].Value)
	key := pub + " " + d.Message.Destination
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, seen := c.last[key]
	switch {
	case seen && seq <= prev:
		c.fail(fmt.Errorf("%s: seq %d after %d", key, seq, prev))
	case c.contiguous && seq != prev+1:
		c.fail(fmt.Errorf("%s: seq %d after %d, expected %d", key, seq, prev, prev+1))
	}
	c.last[key] = seq
	c.count++
	return Delivered
}

func (c *orderChecker) Evict(*Subscription, error) { c.fail(errors.New("evicted")) }

func (c *orderChecker) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

func (c *orderChecker) result() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count, c.err
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func TestTopicStress(t *testing.T) {
	const (
		publishers = 4
		perDest    = 500
		churners   = 3
	)
	dests := []string{"/topic/s.a", "/topic/s.b", "/topic/t.a"}
	b := New(Options{})

	type steady struct {
		dest string
		want int
		c    *orderChecker
	}
	steadies := []steady{
		{"/topic/s.a", publishers * perDest, nil},
		{"/topic/s.*", 2 * publishers * perDest, nil},
		{"/topic/#", 3 * publishers * perDest, nil},
		{"/topic/*.a", 2 * publishers * perDest, nil},
	}
	for i := range steadies {
		steadies[i].c = newOrderChecker(true)
		subscribe(t, b, steadies[i].dest, steadies[i].c, SubscribeOptions{})
	}

	var churnWG, pubWG sync.WaitGroup
	stop := make(chan struct{})
	churnErrs := make(chan error, churners)
	for i := range churners {
		churnWG.Go(func() {
			patterns := []string{"/topic/s.a", "/topic/s.#", "/topic/*.b", "/topic/t.a"}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				c := newOrderChecker(false)
				sub, err := b.Subscribe(patterns[(i+n)%len(patterns)], c, SubscribeOptions{})
				if err != nil {
					churnErrs <- err
					return
				}
				for range 20 {
					if cnt, _ := c.result(); cnt > 0 {
						break
					}
					time.Sleep(time.Millisecond)
				}
				b.Unsubscribe(sub)
				if _, err := c.result(); err != nil {
					churnErrs <- err
					return
				}
			}
		})
	}
	churnWG.Go(func() { pollStats(b, stop, "/queue/none") })
	for p := range publishers {
		pubWG.Go(func() {
			pub := strconv.Itoa(p)
			for seq := 1; seq <= perDest; seq++ {
				for _, d := range dests {
					m := &Message{Destination: d, Header: []Header{{"pub", pub}, {"seq", strconv.Itoa(seq)}}}
					if err := b.Publish(m); err != nil {
						panic(err)
					}
				}
			}
		})
	}
	pubWG.Wait()
	close(stop)
	churnWG.Wait()
	close(churnErrs)
	for err := range churnErrs {
		t.Fatalf("churning subscriber: %v", err)
	}
	for _, s := range steadies {
		n, err := s.c.result()
		if err != nil {
			t.Fatalf("%s: %v", s.dest, err)
		}
		if n != s.want {
			t.Fatalf("%s: %d deliveries, want %d", s.dest, n, s.want)
		}
	}
	if st := b.Stats(); st.Subscriptions != len(steadies) || st.Topics != len(steadies) {
		t.Fatalf("stats after churn %+v", st)
	}
}

// inboxSubscriber hands deliveries to a consumer goroutine through a small
// buffered channel and answers Full when it is full, like a session whose
// outbound queue is full.
type inboxSubscriber struct{ inbox chan Delivery }

func (s *inboxSubscriber) Deliver(_ *Subscription, d Delivery) DeliverResult {
	select {
	case s.inbox <- d:
		return Delivered
	default:
		return Full
	}
}

func (s *inboxSubscriber) Evict(*Subscription, error) { panic("queue consumer evicted") }

// TestQueueStress has producers publish while consumers join and leave, take
// deliveries through small inboxes, and ack, nack or sit on them at random.
// Every message must end up acknowledged exactly once.
func TestQueueStress(t *testing.T) {
	const (
		producers   = 4
		perProducer = 1500
		consumers   = 4
		total       = producers * perProducer
		dest        = "/queue/stress"
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	b := New(Options{})

	var (
		ackMu    sync.Mutex
		acked    = make(map[string]int, total)
		ackedAll = make(chan struct{})
		nacks    atomic.Int64
		leaves   atomic.Int64
		failures = make(chan error, consumers)
	)
	recordAcks := func(ds []Delivery) {
		ackMu.Lock()
		defer ackMu.Unlock()
		for _, d := range ds {
			acked[d.Message.ID]++
		}
		if len(acked) == total {
			select {
			case <-ackedAll:
			default:
				close(ackedAll)
			}
		}
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	for c := range consumers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			for {
				mode := []AckMode{AckClient, AckClientIndividual}[rng.IntN(2)]
				in := &inboxSubscriber{inbox: make(chan Delivery, 1+rng.IntN(4))}
				sub, err := b.Subscribe(dest, in, SubscribeOptions{AckMode: mode, Prefetch: rng.IntN(8)})
				if err != nil {
					failures <- err
					return
				}
				var pending []Delivery // unsettled, in tag order
				settle := func(upto int, nack bool) error {
					d := pending[upto]
					var err error
					if nack {
						err = b.Nack(sub, d.Tag, mode == AckClient)
						nacks.Add(1)
					} else {
						err = b.Ack(sub, d.Tag, mode == AckClient)
					}
					if err != nil {
						return fmt.Errorf("settle tag %d: %w", d.Tag, err)
					}
					if mode == AckClient {
						if !nack {
							recordAcks(pending[:upto+1])
						}
						pending = append(pending[:0], pending[upto+1:]...)
					} else {
						if !nack {
							recordAcks(pending[upto : upto+1])
						}
						pending = append(pending[:upto], pending[upto+1:]...)
					}
					return nil
				}
				leave := false
				for !leave {
					select {
					case <-done:
						b.Unsubscribe(sub)
						return
					case d := <-in.inbox:
						b.Resume(sub)
						pending = append(pending, d)
						switch r := rng.IntN(100); {
						case r < 60:
							err = settle(rng.IntN(len(pending)), false)
						case r < 75:
							err = settle(rng.IntN(len(pending)), true)
						case r < 78:
							leave = true
						}
					case <-time.After(time.Millisecond):
						// Idle with a full window: settle what we sat on.
						for len(pending) > 0 && err == nil {
							err = settle(len(pending)-1, rng.IntN(4) == 0)
						}
					}
					if err != nil {
						failures <- err
						b.Unsubscribe(sub)
						return
					}
				}
				// Leave without settling: pending deliveries go back to the queue.
				b.Unsubscribe(sub)
				leaves.Add(1)
				for _, d := range pending {
					if err := b.Ack(sub, d.Tag, false); !errors.Is(err, ErrUnknownTag) {
						failures <- fmt.Errorf("ack after leaving: %v", err)
						return
					}
				}
			}
		})
	}

	wg.Go(func() { pollStats(b, done, dest) })
	var prodWG sync.WaitGroup
	for range producers {
		prodWG.Go(func() {
			for range perProducer {
				if err := b.Publish(&Message{Destination: dest}); err != nil {
					failures <- err
					return
				}
			}
		})
	}
	prodWG.Wait()

	select {
	case <-ackedAll:
	case err := <-failures:
		close(done)
		wg.Wait()
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		close(done)
		wg.Wait()
		ready, unacked, _ := b.QueueDepth(dest)
		ackMu.Lock()
		n := len(acked)
		ackMu.Unlock()
		t.Fatalf("stalled: %d of %d acknowledged; queue ready %d unacked %d", n, total, ready, unacked)
	}
	close(done)
	wg.Wait()
	select {
	case err := <-failures:
		t.Fatal(err)
	default:
	}
	for id, n := range acked {
		if n != 1 {
			t.Fatalf("message %s acknowledged %d times", id, n)
		}
	}
	if st := b.Stats(); st.QueuedMessages != 0 || st.UnackedMessages != 0 || st.Subscriptions != 0 {
		t.Fatalf("stats at the end %+v", st)
	}
	t.Logf("%d messages, %d nacks, %d consumer departures", total, nacks.Load(), leaves.Load())
}

// pollStats reads the broker's figures until stop is closed, so that the race
// detector sees them read while deliveries, acks and departures go on.
func pollStats(b *Broker, stop <-chan struct{}, queue string) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		st := b.Stats()
		if st.Subscriptions < 0 || st.QueuedMessages < 0 || st.UnackedMessages < 0 {
			panic(fmt.Sprintf("negative stats %+v", st))
		}
		b.QueueDepth(queue)
		time.Sleep(100 * time.Microsecond)
	}
}
