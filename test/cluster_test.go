package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stompd/stompd/stompws/frame"
)

// clusterNode is one stompd process of a cluster and clients that reach it.
type clusterNode struct {
	p  *stompdProcess
	ts *testServer
}

// startClusterNodes runs n stompd processes joined to the NATS servers at urls.
func startClusterNodes(t *testing.T, urls string, n int, extra ...string) []clusterNode {
	t.Helper()
	nodes := make([]clusterNode, n)
	for i := range nodes {
		stompAddr := freeLoopbackAddr(t)
		args := append([]string{"-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-nats", urls,
			"-node-name", fmt.Sprintf("node-%d", i+1)}, extra...)
		p := startStompd(t, args...)
		nodes[i] = clusterNode{p: p, ts: p.clients(stompAddr)}
	}
	return nodes
}

// waitReady waits until every node's /readyz says 200.
func waitReady(t *testing.T, nodes []clusterNode) {
	t.Helper()
	waitReadyWithin(t, nodes, waitTimeout)
}

// waitReadyWithin is waitReady with a bound of its own.
func waitReadyWithin(t *testing.T, nodes []clusterNode, within time.Duration) {
	t.Helper()
	for i, n := range nodes {
		deadline := time.Now().Add(within)
		for {
			code, body := readyz(n.p)
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d not ready within %s: %d %q; log:\n%s", i+1, within, code, body, n.p.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// readyz returns the node's /readyz status and body.
func readyz(p *stompdProcess) (int, string) {
	resp, err := http.Get(p.URL() + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestClusterTopics: three nodes on one NATS server serve as one broker for topics: a SEND on any node
// reaches every matching subscriber on every node, wildcards and hostile destination names included,
// each message once and in each publisher's order, over TCP and WebSocket.
func TestClusterTopics(t *testing.T) {
	nats := startNATS(t)
	nodes := startClusterNodes(t, nats.URL(), 3)
	waitReady(t, nodes)

	dests := []string{"/topic/prices.eur", "/topic/prices.usd.spot", "/topic/odd name.ünïcödé>*", "/topic/prices"}
	patterns := map[string][]string{
		"/topic/prices.eur":         {"/topic/prices.eur"},
		"/topic/prices.*":           {"/topic/prices.eur"},
		"/topic/prices.#":           {"/topic/prices.eur", "/topic/prices.usd.spot", "/topic/prices"},
		"/topic/#":                  dests,
		"/topic/*.usd.#":            {"/topic/prices.usd.spot"},
		"/topic/odd name.ünïcödé>*": {"/topic/odd name.ünïcödé>*"},
		"/topic/#.spot":             {"/topic/prices.usd.spot"},
	}
	order := slices.Sorted(maps.Keys(patterns)) // subscription ids follow this order
	type reader struct {
		rc      *rawClient
		pattern string
		want    []string
	}
	var readers []reader
	for i, n := range nodes {
		tr := []string{"tcp", "ws"}[i%2]
		rc := n.ts.rawOver(t, tr)
		rc.connect("1.2")
		id := 0
		for _, pattern := range order {
			id++
			rc.send(fmt.Sprintf("SUBSCRIBE\nid:%d\ndestination:%s\nreceipt:r%d\n\n\x00", id, pattern, id))
			rc.expect(frame.RECEIPT)
		}
		readers = append(readers, reader{rc: rc})
	}
	// Two publishers on two nodes, each to every destination in turn.
	const rounds = 25
	pubs := []*rawClient{nodes[0].ts.rawOver(t, "tcp"), nodes[2].ts.rawOver(t, "ws")}
	for _, p := range pubs {
		p.connect("1.2")
	}
	for i := range rounds {
		for pi, p := range pubs {
			for _, d := range dests {
				p.send(fmt.Sprintf("SEND\ndestination:%s\n\np%d %s %d\x00", d, pi, d, i))
			}
		}
	}
	for _, p := range pubs {
		p.send("SEND\ndestination:/queue/sync\nreceipt:done\n\n\x00")
		p.expect(frame.RECEIPT)
	}
	// Each node's reader: per subscription, every message it matches once, each publisher's in order.
	wantPerSub := 0
	for _, ds := range patterns {
		wantPerSub += len(ds)
	}
	for ni, r := range readers {
		got := map[string][]string{} // subscription id → bodies
		ids := map[string]string{}
		for i, pattern := range order {
			ids[fmt.Sprint(i+1)] = pattern
		}
		for range rounds * len(pubs) * wantPerSub {
			f := r.rc.expect(frame.MESSAGE)
			got[f.Get("subscription")] = append(got[f.Get("subscription")], string(f.Body))
		}
		for sid, bodies := range got {
			pattern := ids[sid]
			for pi := range pubs {
				var mine, want []string
				for _, b := range bodies {
					if strings.HasPrefix(b, fmt.Sprintf("p%d ", pi)) {
						mine = append(mine, b)
					}
				}
				for i := range rounds {
					for _, d := range dests {
						for _, w := range patterns[pattern] {
							if w == d {
								want = append(want, fmt.Sprintf("p%d %s %d", pi, d, i))
							}
						}
					}
				}
				if strings.Join(mine, "|") != strings.Join(want, "|") {
					t.Errorf("node %d, %q, publisher %d: got %d messages, want %d in order", ni+1, pattern, pi, len(mine), len(want))
				}
			}
		}
		if f := r.rc.nextWithin(300 * time.Millisecond); f != nil {
			t.Errorf("node %d: a repeat or stray frame after the expected messages: %s", ni+1, f)
		}
	}
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d to see the 3 nodes", i+1), func() bool {
			return scrapeValue(t, n.p.URL()+"/metrics", "stompd_cluster_nodes") == 3
		})
		if v := scrapeValue(t, n.p.URL()+"/metrics", `stompd_backplane_messages_total{direction="in"}`); v == 0 {
			t.Errorf("node %d received nothing over the backplane", i+1)
		}
	}
}

// TestClusterGoStomp: go-stomp clients on different nodes, as services use them.
func TestClusterGoStomp(t *testing.T) {
	nats := startNATS(t)
	nodes := startClusterNodes(t, nats.URL(), 2)
	waitReady(t, nodes)
	sub := nodes[1].ts.dialTCP(t)
	s, err := sub.Subscribe("/topic/orders.*", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	// go-stomp's Subscribe sends no receipt: wait until node 2's interest is in place.
	time.Sleep(200 * time.Millisecond)
	pub := nodes[0].ts.dialWS(t)
	for i := range 50 {
		if err := pub.Send(fmt.Sprintf("/topic/orders.%d", i%3), "text/plain", []byte(fmt.Sprint(i)), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		if m := recv(t, s); string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d: %q", i, m.Body)
		}
	}
}

// TestClusterNATSOutage: NATS unreachable at start keeps the node not ready but serving its own
// clients; once NATS is there it becomes ready. NATS killed: local traffic goes on, readiness turns
// false after the grace period; NATS back: every subscription is made again and messages cross the
// cluster again (a node that says it is ready while nothing is delivered would fail here).
func TestClusterNATSOutage(t *testing.T) {
	nats := &natsProcess{t: t, name: "n1", addr: freeLoopbackAddr(t), dir: t.TempDir()}
	nodes := startClusterNodes(t, nats.URL(), 2, "-nats-ready-grace", "1s")
	code, body := readyz(nodes[0].p)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not connected to NATS yet") {
		t.Errorf("/readyz before NATS: %d %q", code, body)
	}
	// Local traffic works without NATS.
	local := nodes[0].ts.rawOver(t, "tcp")
	local.connect("1.2")
	local.subscribe("/topic/news")
	pub := nodes[0].ts.rawOver(t, "tcp")
	pub.connect("1.2")
	pub.send("SEND\ndestination:/topic/news\n\nalone\x00")
	if f := local.expect(frame.MESSAGE); string(f.Body) != "alone" {
		t.Fatalf("local delivery without NATS: %s", f)
	}

	nats.start()
	t.Cleanup(nats.stop)
	waitReady(t, nodes)
	remote := nodes[1].ts.rawOver(t, "ws")
	remote.connect("1.2")
	remote.subscribe("/topic/news")
	crosses := func(body string) {
		t.Helper()
		// The subscription made before NATS was reachable (node 1's) and the one made after (node 2's)
		// both get messages from the other node.
		pub.send("SEND\ndestination:/topic/news\n\n" + body + "\x00")
		if f := remote.expect(frame.MESSAGE); string(f.Body) != body {
			t.Fatalf("node 2 got %s, want %q", f, body)
		}
		if f := local.expect(frame.MESSAGE); string(f.Body) != body {
			t.Fatalf("node 1 got %s, want %q", f, body)
		}
		other := nodes[1].ts.rawOver(t, "tcp")
		other.connect("1.2")
		other.send("SEND\ndestination:/topic/news\n\n" + body + " back\x00")
		if f := local.expect(frame.MESSAGE); string(f.Body) != body+" back" {
			t.Fatalf("node 1 got %s from node 2, want %q", f, body+" back")
		}
		remote.expect(frame.MESSAGE)
	}
	crosses("first")

	nats.kill()
	pub.send("SEND\ndestination:/topic/news\n\nduring the outage\x00")
	if f := local.expect(frame.MESSAGE); string(f.Body) != "during the outage" {
		t.Fatalf("local delivery during the outage: %s", f)
	}
	waitFor(t, "readiness to turn false", func() bool {
		code, body := readyz(nodes[0].p)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "NATS connection lost")
	})
	nats.start()
	waitReady(t, nodes)
	// nats.go makes the subscriptions again on reconnect; allow it a moment to do so on both nodes.
	deadline := time.Now().Add(waitTimeout)
	for {
		pub.send("SEND\ndestination:/topic/news\n\nprobe\x00")
		local.expect(frame.MESSAGE)
		got := remote.nextWithin(300 * time.Millisecond)
		if got != nil && string(got.Body) == "probe" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no message crossed the cluster after NATS came back")
		}
	}
	for remote.nextWithin(300*time.Millisecond) != nil {
	}
	crosses("after the outage")
	if v := scrapeValue(t, nodes[0].p.URL()+"/metrics", "stompd_cluster_reconnects_total"); v < 1 {
		t.Errorf("stompd_cluster_reconnects_total = %v", v)
	}
}

// quote reads the price of a stock quote MESSAGE.
func quote(t *testing.T, f *rawFrame) (symbol string, price float64) {
	t.Helper()
	var q struct {
		Symbol string  `json:"symbol"`
		Price  float64 `json:"price"`
	}
	if err := json.Unmarshal(f.Body, &q); err != nil {
		t.Fatalf("quote %s: %v", f, err)
	}
	return q.Symbol, q.Price
}

// storedQuote reads the quote of symbol the cluster's JetStream retains (stream RETAINED, subject
// r.<escaped destination>); the stored message ends with the quote's JSON body.
func storedQuote(t *testing.T, url, symbol string) float64 {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	stream, err := js.Stream(ctx, "RETAINED")
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetLastMsgForSubject(ctx, "r.stocks%2E"+symbol)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(m.Data, []byte(`{"symbol"`))
	if i < 0 {
		t.Fatalf("no quote in the stored message %q", m.Data)
	}
	_, price := quote(t, &rawFrame{Body: m.Data[i:]})
	return price
}

// feedHolders returns the indexes of the nodes whose log says they run the stock feed now.
func feedHolders(nodes []clusterNode) []int {
	var out []int
	for i, n := range nodes {
		log := n.p.Log()
		if strings.LastIndex(log, "this node runs stocks") > strings.LastIndex(log, "this node no longer runs stocks") {
			out = append(out, i)
		}
	}
	return out
}

// TestClusterStocksAndRetained: one stock feed for the cluster: one node runs it, every node's
// subscribers get its quotes and, on subscribing, the same retained last values; when that node is
// killed another takes over within seconds, going on from the last prices; the last values survive
// the whole cluster's restart in the cluster's JetStream.
func TestClusterStocksAndRetained(t *testing.T) {
	nats := startNATS(t)
	var nodes []clusterNode
	for i := range 3 {
		stompAddr := freeLoopbackAddr(t)
		p := startStompd(t, "-chat=false", "-stocks-min-interval", "20ms", "-stocks-max-interval", "60ms", "-stocks-symbols", "AAA=100,BBB=200",
			"-stomp-addr", stompAddr, "-nats", nats.URL(), "-node-name", fmt.Sprintf("node-%d", i+1))
		nodes = append(nodes, clusterNode{p: p, ts: p.clients(stompAddr)})
	}
	waitReady(t, nodes)
	waitFor(t, "one node to run the feed", func() bool { return len(feedHolders(nodes)) == 1 })
	leader := feedHolders(nodes)[0]
	time.Sleep(300 * time.Millisecond)
	if h := feedHolders(nodes); len(h) != 1 || h[0] != leader {
		t.Fatalf("feed holders %v, want only node %d", h, leader+1)
	}
	// Every node: a new subscriber gets the retained last value at once, then live quotes.
	watchers := make([]*rawClient, len(nodes))
	for i, n := range nodes {
		rc := n.ts.rawOver(t, "tcp")
		rc.connect("1.2")
		rc.send("SUBSCRIBE\nid:1\ndestination:/topic/stocks.AAA\n\n\x00")
		if f := rc.expect(frame.MESSAGE); f.Get("retained") != "true" {
			t.Errorf("node %d: first AAA quote is not the retained one: %s", i+1, f)
		}
		rc.expect(frame.MESSAGE) // a live one
		watchers[i] = rc
	}

	// Kill the feed's node: another takes over, from the last price the others saw.
	survivor := (leader + 1) % len(nodes)
	var last float64
	for f := watchers[survivor].nextWithin(50 * time.Millisecond); f != nil; f = watchers[survivor].nextWithin(50 * time.Millisecond) {
		_, last = quote(t, f)
	}
	nodes[leader].p.kill()
	for {
		f := watchers[survivor].nextWithin(200 * time.Millisecond)
		if f == nil {
			break
		}
		_, last = quote(t, f)
	}
	if last == 0 {
		t.Fatal("no quote seen before the kill")
	}
	begin := time.Now()
	f := watchers[survivor].expect(frame.MESSAGE)
	took := time.Since(begin)
	if _, price := quote(t, f); price != last {
		t.Errorf("the new feed started from %v, the last price was %v", price, last)
	}
	rest := []clusterNode{}
	for i, n := range nodes {
		if i != leader {
			rest = append(rest, n)
		}
	}
	// The new holder's log line may be read after its first quote arrives: wait for it.
	waitFor(t, "one surviving node to run the feed", func() bool { return len(feedHolders(rest)) == 1 })
	t.Logf("feed taken over %s after the kill", took.Round(10*time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("took over after %s", took)
	}

	// Stop the cluster; the last values survive in its JetStream: a node started afterwards serves,
	// first, the last BBB price the cluster kept.
	for _, rc := range watchers {
		rc.close()
	}
	for _, n := range rest {
		n.p.Stop()
	}
	lastBBB := storedQuote(t, nats.URL(), "BBB")
	// The first quote a subscriber of the restarted node gets, retained or the feed's first (which
	// goes on from the retained price), is the last price before the stop.
	stompAddr := freeLoopbackAddr(t)
	p := startStompd(t, "-chat=false", "-stocks-min-interval", "1h", "-stocks-max-interval", "2h", "-stocks-symbols", "AAA=100,BBB=200",
		"-stomp-addr", stompAddr, "-nats", nats.URL(), "-node-name", "node-again")
	waitReady(t, []clusterNode{{p: p}})
	rc := p.clients(stompAddr).rawOver(t, "tcp")
	rc.connect("1.2")
	rc.send("SUBSCRIBE\nid:1\ndestination:/topic/stocks.BBB\n\n\x00")
	if _, price := quote(t, rc.expect(frame.MESSAGE)); price != lastBBB {
		t.Errorf("after the restart BBB is %v, the last price was %v", price, lastBBB)
	}
}

// chatEvent is one event of the chat room's topic.
type chatEvent struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Text    string `json:"text"`
	Members []struct {
		Name string `json:"name"`
	} `json:"members"`
}

func readChat(t *testing.T, rc *rawClient) chatEvent {
	t.Helper()
	f := rc.expect(frame.MESSAGE)
	var ev chatEvent
	if err := json.Unmarshal(f.Body, &ev); err != nil {
		t.Fatalf("chat event %s: %v", f, err)
	}
	return ev
}

// nextChat reads chat events until one of type typ (history and others are skipped).
func nextChat(t *testing.T, rc *rawClient, typ string) chatEvent {
	t.Helper()
	for {
		if ev := readChat(t, rc); ev.Type == typ {
			return ev
		}
	}
}

// TestClusterChat: one chat room across the cluster: a newcomer on any node gets every node's
// members; joins, leaves and messages are seen on every node, and the history too; the members of a
// node that crashed leave within the node timeout.
func TestClusterChat(t *testing.T) {
	nats := startNATS(t)
	var nodes []clusterNode
	for i := range 2 {
		stompAddr := freeLoopbackAddr(t)
		p := startStompd(t, "-stocks=false", "-stomp-addr", stompAddr, "-nats", nats.URL(), "-node-name", fmt.Sprintf("node-%d", i+1))
		nodes = append(nodes, clusterNode{p: p, ts: p.clients(stompAddr)})
	}
	waitReady(t, nodes)
	alice := nodes[0].ts.rawOver(t, "ws")
	alice.connect("1.2", "name:alice")
	alice.send("SUBSCRIBE\nid:1\ndestination:/topic/chat\n\n\x00")
	nextChat(t, alice, "members")
	alice.send("SEND\ndestination:/app/chat\n\nhello from node 1\x00")
	nextChat(t, alice, "message")

	// Bob on node 2: the member list he gets names alice (once node 1's heart-beat has said so), the
	// history has her message, and she sees him join.
	var bob *rawClient
	deadline := time.Now().Add(waitTimeout)
	for {
		bob = nodes[1].ts.rawOver(t, "tcp")
		bob.connect("1.2", "name:bob")
		bob.send("SUBSCRIBE\nid:1\ndestination:/topic/chat\n\n\x00")
		var history []string
		var members chatEvent
		for {
			ev := readChat(t, bob)
			if ev.Type == "message" {
				history = append(history, ev.Text)
			}
			if ev.Type == "members" {
				members = ev
				break
			}
		}
		var names []string
		for _, m := range members.Members {
			names = append(names, m.Name)
		}
		if slices.Contains(names, "alice") && slices.Contains(names, "bob") {
			if !slices.Contains(history, "hello from node 1") {
				t.Errorf("bob's history %q lacks alice's message", history)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's member list %v never named alice", names)
		}
		bob.close()
		time.Sleep(100 * time.Millisecond)
	}
	if ev := nextChat(t, alice, "join"); ev.Name != "bob" {
		t.Errorf("alice saw %+v join", ev)
	}
	bob.send("SEND\ndestination:/app/chat\n\nhi alice\x00")
	if ev := nextChat(t, alice, "message"); ev.Text != "hi alice" || ev.Name != "bob" {
		t.Errorf("alice got %+v", ev)
	}
	// Node 1 crashes: alice leaves for bob within the node timeout.
	begin := time.Now()
	nodes[0].p.kill()
	if ev := nextChat(t, bob, "leave"); ev.Name != "alice" {
		t.Errorf("bob saw %+v leave", ev)
	}
	took := time.Since(begin)
	t.Logf("alice left %s after her node crashed", took.Round(100*time.Millisecond))
	if took > 30*time.Second {
		t.Errorf("alice left only after %s", took)
	}
}

// TestClusterReplies: a reply to a /temp-queue/ reaches the requester on whichever node it is
// connected to (the request crosses on a topic here; queues are per node until they move to JetStream).
func TestClusterReplies(t *testing.T) {
	nats := startNATS(t)
	nodes := startClusterNodes(t, nats.URL(), 2)
	waitReady(t, nodes)
	responder := nodes[1].ts.dialTCP(t)
	requests, err := responder.Subscribe("/topic/rpc", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // go-stomp's SUBSCRIBE has no receipt: let node 2's interest settle
	client := nodes[0].ts.rawOver(t, "ws")
	client.connect("1.2")
	for i := range 3 {
		client.send(fmt.Sprintf("SEND\ndestination:/topic/rpc\nreply-to:/temp-queue/answers\n\nquestion %d\x00", i))
		req := recv(t, requests)
		replyTo := req.Header.Get("reply-to")
		if !strings.HasPrefix(replyTo, "/reply-queue/") {
			t.Fatalf("reply-to %q", replyTo)
		}
		if err := responder.Send(replyTo, "text/plain", []byte(fmt.Sprintf("answer %d", i)), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
		if m := client.expect(frame.MESSAGE); string(m.Body) != fmt.Sprintf("answer %d", i) || m.Get("subscription") != "/temp-queue/answers" {
			t.Fatalf("reply on node 1: %s", m)
		}
	}
}

// readMessages reads n MESSAGE frames and returns them.
func readMessages(t *testing.T, rc *rawClient, n int) []*rawFrame {
	t.Helper()
	out := make([]*rawFrame, 0, n)
	for range n {
		out = append(out, rc.expect(frame.MESSAGE))
	}
	return out
}

// TestClusterQueues: competing consumers across nodes on the cluster's JetStream: each message to
// exactly one consumer cluster-wide, prefetch honoured on each node; a node killed with unacknowledged
// messages: they go to a consumer on another node after -nats-ack-wait, marked redelivered; a node shut
// down gracefully hands them over at once.
func TestClusterQueues(t *testing.T) {
	nats := startNATS(t)
	nodes := startClusterNodes(t, nats.URL(), 3, "-nats-ack-wait", "2s")
	waitReady(t, nodes)
	consumers := make([]*rawClient, 3)
	for i, n := range nodes {
		rc := n.ts.rawOver(t, []string{"tcp", "ws"}[i%2])
		rc.connect("1.2")
		rc.send("SUBSCRIBE\nid:w\ndestination:/queue/work\nack:client-individual\nprefetch-count:5\nreceipt:r\n\n\x00")
		rc.expect(frame.RECEIPT)
		consumers[i] = rc
	}
	pub := nodes[0].ts.rawOver(t, "tcp")
	pub.connect("1.2")
	const total = 60
	for i := range total {
		pub.send(fmt.Sprintf("SEND\ndestination:/queue/work\nreceipt:s%d\n\nm%d\x00", i, i))
		pub.expect(frame.RECEIPT)
	}
	// Each consumer holds at most 5 unacknowledged; acknowledging as they come, all 60 arrive once.
	seen := map[string]int{}
	got := 0
	for got < total {
		progress := false
		for i, rc := range consumers {
			for {
				f := rc.nextWithin(50 * time.Millisecond)
				if f == nil {
					break
				}
				if f.Command != frame.MESSAGE {
					t.Fatalf("consumer %d: %s", i+1, f)
				}
				seen[string(f.Body)]++
				got++
				progress = true
				rc.send("ACK\nid:" + f.Get("ack") + "\n\n\x00")
			}
		}
		if !progress && got < total {
			time.Sleep(50 * time.Millisecond)
		}
		if len(seen) > total {
			break
		}
	}
	for body, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", body, n)
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct messages delivered, want %d", len(seen), total)
	}

	// Node 2's consumer takes 5 and acknowledges none; node 2 is killed.
	consumers[0].send("UNSUBSCRIBE\nid:w\nreceipt:u\n\n\x00")
	consumers[0].expect(frame.RECEIPT)
	consumers[2].send("UNSUBSCRIBE\nid:w\nreceipt:u\n\n\x00")
	consumers[2].expect(frame.RECEIPT)
	for i := range 5 {
		pub.send(fmt.Sprintf("SEND\ndestination:/queue/work\nreceipt:k%d\n\nkilled %d\x00", i, i))
		pub.expect(frame.RECEIPT)
	}
	held := readMessages(t, consumers[1], 5)
	nodes[1].p.kill()
	begin := time.Now()
	consumers[2].send("SUBSCRIBE\nid:w2\ndestination:/queue/work\nack:client-individual\nprefetch-count:10\n\n\x00")
	back := readMessages(t, consumers[2], 5)
	took := time.Since(begin)
	// The same messages, marked redelivered; JetStream redelivers after AckWait in no set order.
	var heldBodies, backBodies []string
	for i, f := range back {
		heldBodies, backBodies = append(heldBodies, string(held[i].Body)), append(backBodies, string(f.Body))
		if f.Get("redelivered") != "true" {
			t.Errorf("after the kill: %s", f)
		}
		consumers[2].send("ACK\nid:" + f.Get("ack") + "\n\n\x00")
	}
	slices.Sort(heldBodies)
	slices.Sort(backBodies)
	if !slices.Equal(heldBodies, backBodies) {
		t.Errorf("after the kill got %v, the killed node held %v", backBodies, heldBodies)
	}
	t.Logf("a killed node's 5 unacknowledged messages reached another node's consumer after %s (-nats-ack-wait 2s)", took.Round(10*time.Millisecond))

	// Node 3 shut down gracefully while holding 3: node 1's consumer gets them at once.
	for i := range 3 {
		pub.send(fmt.Sprintf("SEND\ndestination:/queue/work\nreceipt:g%d\n\ngraceful %d\x00", i, i))
		pub.expect(frame.RECEIPT)
	}
	readMessages(t, consumers[2], 3)
	consumers[0].send("SUBSCRIBE\nid:w3\ndestination:/queue/work\nack:client-individual\n\n\x00")
	begin = time.Now()
	nodes[2].p.Stop()
	handed := readMessages(t, consumers[0], 3)
	took = time.Since(begin)
	for _, f := range handed {
		if f.Get("redelivered") != "true" {
			t.Errorf("handed over: %s", f)
		}
	}
	t.Logf("a stopped node's 3 unacknowledged messages reached another node's consumer after %s", took.Round(10*time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("a graceful shutdown took %s to hand its messages over", took)
	}
}

// TestClusterDurableSubscription: a durable subscription made on one node keeps what any node
// publishes while its subscriber is away, once, and its subscriber may come back on another node;
// deleting it on one node deletes it everywhere.
func TestClusterDurableSubscription(t *testing.T) {
	nats := startNATS(t)
	nodes := startClusterNodes(t, nats.URL(), 2)
	waitReady(t, nodes)
	sub := "SUBSCRIBE\nid:audit\ndestination:/topic/orders.*\ndurable:true\nauto-delete:false\nack:client-individual\n\n\x00"
	first := nodes[0].ts.rawOver(t, "tcp")
	first.connect("1.2")
	first.send(strings.Replace(sub, "\n\n", "\nreceipt:r\n\n", 1))
	first.expect(frame.RECEIPT)
	first.send("DISCONNECT\nreceipt:bye\n\n\x00")
	first.expect(frame.RECEIPT)
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d to bind the durable subscription", i+1), func() bool {
			return scrapeValue(t, n.p.URL()+"/metrics", "stompd_durable_subscriptions_current") == 1
		})
	}
	pubs := []*rawClient{nodes[0].ts.rawOver(t, "tcp"), nodes[1].ts.rawOver(t, "ws")}
	for _, p := range pubs {
		p.connect("1.2")
	}
	sendAll(pubs[1], "/topic/orders.eu", "o1", "o2")
	sendAll(pubs[0], "/topic/orders.us", "o3")
	back := nodes[1].ts.rawOver(t, "ws")
	back.connect("1.2")
	back.send(sub)
	var bodies []string
	for _, f := range readMessages(t, back, 3) {
		bodies = append(bodies, string(f.Body))
		back.send("ACK\nid:" + f.Get("ack") + "\n\n\x00")
	}
	slices.Sort(bodies)
	if strings.Join(bodies, " ") != "o1 o2 o3" {
		t.Errorf("back on node 2: %v", bodies)
	}
	sendAll(pubs[0], "/topic/orders.eu", "o4")
	if f := back.expect(frame.MESSAGE); string(f.Body) != "o4" {
		t.Errorf("live: %s", f)
	}
	if f := back.nextWithin(300 * time.Millisecond); f != nil {
		t.Errorf("a message kept twice: %s", f)
	}
	back.send("UNSUBSCRIBE\nid:audit\ndurable:true\nreceipt:gone\n\n\x00")
	back.expect(frame.RECEIPT)
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d to forget the durable subscription", i+1), func() bool {
			return scrapeValue(t, n.p.URL()+"/metrics", "stompd_durable_subscriptions_current") == 0
		})
	}
}

// TestClusterPages: the chat and stock pages in Chromium, two browsers on two nodes of a cluster; the
// console of one node listing both.
func TestClusterPages(t *testing.T) {
	requireJS(t, true)
	nats := startNATS(t)
	var nodes []clusterNode
	for i := range 2 {
		stompAddr := freeLoopbackAddr(t)
		p := startStompd(t, "-stomp-addr", stompAddr, "-nats", nats.URL(), "-node-name", fmt.Sprintf("node-%d", i+1),
			"-stocks-min-interval", "500ms", "-stocks-max-interval", "1500ms")
		nodes = append(nodes, clusterNode{p: p, ts: p.clients(stompAddr)})
	}
	waitReady(t, nodes)
	for _, scenario := range []string{"clusterchat", "clusterstocks", "clusterconsole"} {
		t.Run(scenario, func(t *testing.T) {
			res := runPages(t, scenario, nodes[0].p.URL()+" "+nodes[1].p.URL(), nil)
			t.Logf("%s", strings.Join(res.Passed, "; "))
		})
	}
}

// TestClusterAuth: NATS with a password (given to stompd in its environment, never logged), stompd
// with its users file on both nodes: the user-id of a message sent on one node reaches a subscriber
// on the other.
func TestClusterAuth(t *testing.T) {
	const natsPassword = "s3cret-nats-pass"
	nats := &natsProcess{t: t, name: "n1", addr: freeLoopbackAddr(t), dir: t.TempDir(), extra: []string{"--user", "stompd", "--pass", natsPassword}}
	nats.start()
	t.Cleanup(nats.stop)
	fx := newAuthFixture(t, map[string]string{"alice": "wonderland", "bob": "builder"})
	config := filepath.Join(t.TempDir(), "stompd.yaml")
	if err := os.WriteFile(config, []byte("rules:\n  - users: [\"*\"]\n    publish: [/topic/#]\n    subscribe: [/topic/#]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var nodes []clusterNode
	for i := range 2 {
		stompAddr := freeLoopbackAddr(t)
		p := &stompdProcess{t: t, HTTPAddr: freeLoopbackAddr(t), env: []string{"STOMPD_NATS_PASSWORD=" + natsPassword},
			extra: []string{"-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-nats", nats.URL(), "-nats-user", "stompd",
				"-node-name", fmt.Sprintf("node-%d", i+1), "-users", fx.usersFile, "-config", config}}
		p.start()
		t.Cleanup(p.Stop)
		nodes = append(nodes, clusterNode{p: p, ts: p.clients(stompAddr)})
	}
	waitReady(t, nodes)
	bob := nodes[1].ts.rawOver(t, "tcp")
	bob.connect("1.2", "login:bob", "passcode:builder")
	bob.subscribe("/topic/chat.x")
	alice := nodes[0].ts.rawOver(t, "ws")
	alice.connect("1.2", "login:alice", "passcode:wonderland")
	alice.send("SEND\ndestination:/topic/chat.x\nuser-id:mallory\n\nfrom alice\x00")
	if f := bob.expect(frame.MESSAGE); f.Get("user-id") != "alice" || string(f.Body) != "from alice" {
		t.Errorf("on node 2: %s", f)
	}
	for i, n := range nodes {
		if strings.Contains(n.p.Log(), natsPassword) {
			t.Errorf("node %d logged the NATS password", i+1)
		}
	}
}

// TestClusterReplicatedStore: three NATS servers in a cluster, each stream on all three
// (-nats-replicas 3); the server a node is connected to is killed: the node reconnects to another,
// and the queue's messages and the retained values are all still there.
func TestClusterReplicatedStore(t *testing.T) {
	servers := startNATSCluster(t, 3)
	urls := servers[0].URL() + "," + servers[1].URL() + "," + servers[2].URL()
	var nodes []clusterNode
	for i, first := range []string{servers[0].URL(), servers[1].URL()} {
		stompAddr := freeLoopbackAddr(t)
		// Each node lists its own server first, so that they start on different servers.
		p := startStompd(t, "-stocks=false", "-chat=false", "-stomp-addr", stompAddr, "-nats", first+","+urls,
			"-nats-replicas", "3", "-node-name", fmt.Sprintf("node-%d", i+1), "-nats-ready-grace", "60s")
		nodes = append(nodes, clusterNode{p: p, ts: p.clients(stompAddr)})
	}
	// A new NATS cluster elects its JetStream leaders before it takes replicated streams.
	begin := time.Now()
	waitReadyWithin(t, nodes, time.Minute)
	t.Logf("ready %s after start, the NATS cluster's JetStream formed", time.Since(begin).Round(100*time.Millisecond))
	pub := nodes[0].ts.rawOver(t, "tcp")
	pub.connect("1.2")
	sendAll(pub, "/queue/replicated", "q1", "q2", "q3")
	servers[0].kill()
	// The queue is still there for a consumer on the other node, all three messages. While the NATS
	// cluster elects new leaders the queue cannot be opened: the SUBSCRIBE gets ERROR store
	// unavailable, and the client tries again, as clients do.
	var con *rawClient
	deadline := time.Now().Add(time.Minute)
	for {
		con = nodes[1].ts.rawOver(t, "tcp")
		con.connect("1.2")
		con.send("SUBSCRIBE\nid:1\ndestination:/queue/replicated\nack:client-individual\nreceipt:s\n\n\x00")
		f := con.next()
		if f.Command == frame.RECEIPT || f.Command == frame.MESSAGE {
			if f.Command == frame.MESSAGE {
				t.Fatalf("a message before the SUBSCRIBE's RECEIPT: %s", f)
			}
			break
		}
		if !strings.Contains(f.Get("message"), "store unavailable") || time.Now().After(deadline) {
			t.Fatalf("SUBSCRIBE after a NATS server's loss: %s", f)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var bodies []string
	for _, f := range readMessages(t, con, 3) {
		bodies = append(bodies, string(f.Body))
		con.send("ACK\nid:" + f.Get("ack") + "\n\n\x00")
	}
	if strings.Join(bodies, " ") != "q1 q2 q3" {
		t.Errorf("after a NATS server's loss: %v", bodies)
	}
	// Node 1 reconnects to a surviving server and takes SENDs to the queue again.
	waitFor(t, "node 1 to reconnect", func() bool {
		return scrapeValue(t, nodes[0].p.URL()+"/metrics", "stompd_cluster_connected") == 1
	})
	pub = nodes[0].ts.rawOver(t, "tcp")
	pub.connect("1.2")
	sendAll(pub, "/queue/replicated", "q4")
	if f := con.expect(frame.MESSAGE); string(f.Body) != "q4" {
		t.Errorf("after node 1's reconnect: %s", f)
	}
}

// TestClusterSlowConsumerStaysLocal: a subscriber that stops reading on one node is cut off as a slow
// consumer there, while a subscriber of the same topic on another node gets every message.
func TestClusterSlowConsumerStaysLocal(t *testing.T) {
	nats := startNATS(t)
	nodes := startClusterNodes(t, nats.URL(), 2, "-max-outbound-bytes", "256KiB")
	waitReady(t, nodes)
	slow := nodes[0].ts.rawOver(t, "tcp")
	slow.connect("1.2")
	slow.subscribe("/topic/firehose")
	slow.pause()
	defer slow.resume() // lets its reader see the close and end
	fast := nodes[1].ts.rawOver(t, "tcp")
	fast.connect("1.2")
	fast.subscribe("/topic/firehose")
	pub := nodes[1].ts.rawOver(t, "ws")
	pub.connect("1.2")
	// 16 MiB in all: more than the kernel's socket buffers hold for the one that stops reading.
	body := strings.Repeat("x", 8<<10)
	const total = 2000
	for i := range total {
		pub.send(fmt.Sprintf("SEND\ndestination:/topic/firehose\n\n%05d %s\x00", i, body))
		// The fast subscriber reads every message before more than 10 are sent: it keeps up.
		if i%10 == 9 {
			for j := i - 9; j <= i; j++ {
				f := fast.expect(frame.MESSAGE)
				if !strings.HasPrefix(string(f.Body), fmt.Sprintf("%05d ", j)) {
					t.Fatalf("fast subscriber, message %d: %.10q", j, f.Body)
				}
			}
		}
	}
	waitFor(t, "the slow subscriber cut off on its node", func() bool {
		return scrapeValue(t, nodes[0].p.URL()+"/metrics", "stompd_slow_consumer_disconnects_total") == 1
	})
	if v := scrapeValue(t, nodes[1].p.URL()+"/metrics", "stompd_slow_consumer_disconnects_total"); v != 0 {
		t.Errorf("node 2 cut off %v slow consumers", v)
	}
}

// TestClusterStreams: a stream is one stream across the cluster: messages published on any node get
// offsets from the cluster's JetStream, and a reader on any node replays the same messages at the same
// offsets, then the live ones.
func TestClusterStreams(t *testing.T) {
	nats := startNATS(t)
	config := filepath.Join(t.TempDir(), "stompd.yaml")
	if err := os.WriteFile(config, []byte("policies:\n  - pattern: /topic/log.#\n    stream: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes := startClusterNodes(t, nats.URL(), 2, "-config", config)
	waitReady(t, nodes)
	pubs := []*rawClient{nodes[0].ts.rawOver(t, "tcp"), nodes[1].ts.rawOver(t, "ws")}
	for _, p := range pubs {
		p.connect("1.2")
	}
	for i := range 20 {
		sendAll(pubs[i%2], "/topic/log.c", fmt.Sprintf("m%d", i))
	}
	// Readers on both nodes see the same 20 messages at the same offsets.
	var views []string
	readers := make([]*rawClient, 2)
	for n, node := range nodes {
		rc := node.ts.rawOver(t, "tcp")
		rc.connect("1.2")
		rc.send("SUBSCRIBE\nid:r\ndestination:/topic/log.c\nx-stream-offset:first\n\n\x00")
		var view []string
		for i, f := range readMessages(t, rc, 20) {
			off := f.Get("x-stream-offset")
			if off != fmt.Sprint(i+1) {
				t.Errorf("node %d: message %d has offset %s", n+1, i, off)
			}
			view = append(view, off+"="+string(f.Body))
		}
		views = append(views, strings.Join(view, " "))
		readers[n] = rc
	}
	if views[0] != views[1] {
		t.Errorf("the nodes read different streams:\n%s\n%s", views[0], views[1])
	}
	// Live: a message published on node 2 reaches both readers at the next offset.
	sendAll(pubs[1], "/topic/log.c", "live")
	for n, rc := range readers {
		if f := rc.expect(frame.MESSAGE); f.Get("x-stream-offset") != "21" || string(f.Body) != "live" {
			t.Errorf("node %d live: %s", n+1, f)
		}
	}
}

// TestClusterTLS: NATS over TLS with client certificates (tls:// URLs, -nats-ca, -nats-cert,
// -nats-key); messages cross between the nodes.
func TestClusterTLS(t *testing.T) {
	pki := newTestPKI(t, "nats-ca")
	serverCert, serverKey := pki.issue(t, "nats-server", false)
	clientCert, clientKey := pki.issue(t, "stompd-node", true)
	nats := &natsProcess{t: t, name: "n1", addr: freeLoopbackAddr(t), dir: t.TempDir(),
		extra: []string{"--tlsverify", "--tlscert", serverCert, "--tlskey", serverKey, "--tlscacert", pki.CA}}
	nats.start()
	t.Cleanup(nats.stop)
	url := "tls://" + nats.addr
	nodes := startClusterNodes(t, url, 2, "-nats-ca", pki.CA, "-nats-cert", clientCert, "-nats-key", clientKey)
	waitReady(t, nodes)
	sub := nodes[1].ts.rawOver(t, "tcp")
	sub.connect("1.2")
	sub.subscribe("/topic/secure")
	pub := nodes[0].ts.rawOver(t, "tcp")
	pub.connect("1.2")
	sendAll(pub, "/topic/secure", "over TLS")
	if f := sub.expect(frame.MESSAGE); string(f.Body) != "over TLS" {
		t.Errorf("got %s", f)
	}
}

// TestClusterQueuesThroughNATSRestart: queue messages taken before NATS restarts are delivered after
// it, the nodes' consumers resume fetching, and new SENDs are taken again: the nodes do not report
// ready while their queues deliver nothing.
func TestClusterQueuesThroughNATSRestart(t *testing.T) {
	nats := startNATS(t)
	nodes := startClusterNodes(t, nats.URL(), 2, "-nats-ready-grace", "1s")
	waitReady(t, nodes)
	con := nodes[1].ts.rawOver(t, "tcp")
	con.connect("1.2")
	con.subscribe("/queue/restart", "ack:client-individual")
	pub := nodes[0].ts.rawOver(t, "tcp")
	pub.connect("1.2")
	sendAll(pub, "/queue/restart", "before")
	if f := con.expect(frame.MESSAGE); string(f.Body) != "before" {
		t.Fatalf("got %s", f)
	} else {
		con.send("ACK\nid:" + f.Get("ack") + "\nreceipt:a\n\n\x00")
		con.expect(frame.RECEIPT)
	}
	nats.kill()
	waitFor(t, "readiness to turn false", func() bool { code, _ := readyz(nodes[0].p); return code != http.StatusOK })
	nats.start()
	waitReady(t, nodes)
	// SENDs are taken again (the first may meet the reconnect), and reach the consumer on the other
	// node, whose node fetches again.
	deadline := time.Now().Add(waitTimeout)
	for i := 0; ; i++ {
		pub = nodes[0].ts.rawOver(t, "tcp")
		pub.connect("1.2")
		pub.send(fmt.Sprintf("SEND\ndestination:/queue/restart\nreceipt:s\n\nafter %d\x00", i))
		if f := pub.next(); f.Command == frame.RECEIPT {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no SEND taken after NATS came back: %s", f)
		}
		time.Sleep(200 * time.Millisecond)
	}
	f := con.expect(frame.MESSAGE)
	if !strings.HasPrefix(string(f.Body), "after ") {
		t.Fatalf("after the restart: %s", f)
	}
}

// TestClusterManagementAPI: any node's management API shows every node with its figures, and its
// overview adds them up: connections where they are, a publish counted once, on the node it was
// published on, deliveries on the nodes that made them. A publish through one node's API reaches
// subscribers on the others.
func TestClusterManagementAPI(t *testing.T) {
	nats := startNATS(t)
	nodes := startClusterNodes(t, nats.URL(), 3)
	waitReady(t, nodes)
	var subs []*rawClient
	for _, n := range nodes[1:] {
		rc := n.ts.rawOver(t, "tcp")
		rc.connect("1.2")
		rc.subscribe("/topic/ops.#")
		subs = append(subs, rc)
	}
	nodes[2].ts.rawOver(t, "ws").connect("1.2") // a second connection on node 3
	pub := nodes[0].ts.rawOver(t, "tcp")
	pub.connect("1.2")
	const sent = 20
	for i := range sent {
		receipt := ""
		if i == sent-1 {
			receipt = "receipt:last\n"
		}
		pub.send(fmt.Sprintf("SEND\ndestination:/topic/ops.node1\n%s\nm%d\x00", receipt, i))
	}
	pub.expect(frame.RECEIPT)
	for _, rc := range subs {
		for i := range sent {
			if m := rc.expect(frame.MESSAGE); string(m.Body) != fmt.Sprintf("m%d", i) {
				t.Fatalf("message %d: %q", i, m.Body)
			}
		}
	}
	if code, out := apiCall(t, "POST", nodes[2].p.URL()+"/api/publish", `{"destination":"/topic/ops.api","body":"from node 3"}`); code != 200 {
		t.Fatalf("publish on node 3: %d %v", code, out)
	}
	for i, rc := range subs {
		if m := rc.expect(frame.MESSAGE); string(m.Body) != "from node 3" {
			t.Fatalf("subscriber on node %d got %q from the API of node 3", i+2, m.Body)
		}
	}

	type figures struct{ connections, published, delivered float64 }
	want := map[string]figures{"node-1": {1, sent, 0}, "node-2": {1, 0, sent + 1}, "node-3": {2, 1, sent + 1}}
	var last map[string]any
	waitFor(t, "every node's figures in node 1's API (they come with the heart-beats)", func() bool {
		_, last = apiCall(t, "GET", nodes[0].p.URL()+"/api/nodes", "")
		list := last["nodes"].([]any)
		if len(list) != 3 {
			return false
		}
		for _, n := range list {
			n := n.(map[string]any)
			name := n["name"].(string)
			got := figures{n["connections"].(float64), n["published"].(float64), n["delivered"].(float64)}
			if got != want[name] || (n["this"] == true) != (name == "node-1") || n["mode"] != "cluster" {
				return false
			}
		}
		return true
	})
	code, ov := apiCall(t, "GET", nodes[1].p.URL()+"/api/overview", "")
	cluster, _ := ov["cluster"].(map[string]any)
	if code != 200 || cluster == nil {
		t.Fatalf("node 2's overview has no cluster figures: %d %v", code, ov)
	}
	totals := cluster["totals"].(map[string]any)
	if cluster["nodes"] != 3.0 || cluster["connections"] != 4.0 || totals["published"] != float64(sent+1) ||
		totals["delivered"] != float64(2*(sent+1)) {
		t.Errorf("cluster figures on node 2: %v (node 1 saw %v)", cluster, last)
	}
}
