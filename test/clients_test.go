package test

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestClientsInNode runs the STOMP clients for JavaScript that people use besides @stomp/stompjs over
// WebSocket (js/clients_node.mjs says what each scenario does) against a server with heart-beats on.
func TestClientsInNode(t *testing.T) {
	requireJS(t, false)
	for _, client := range []string{"stompjs-legacy", "webstomp", "rx-stomp", "stompjs-tcp"} {
		t.Run(client, func(t *testing.T) {
			ts := startServer(t, defaultHeartBeats)
			res := runNode(t, "clients_node.mjs", client, ts.WSURL, ts.TCPAddr)
			if len(res.Passed) < 6 {
				t.Fatalf("only %d checks passed: %v", len(res.Passed), res.Passed)
			}
			for _, q := range []string{"/queue/clients." + client, "/queue/js.jobs"} {
				if ready, unacked, _ := ts.Broker.QueueDepth(q); ready != 0 || unacked != 0 {
					t.Errorf("%s holds %d ready and %d unacked messages after the client acked them all", q, ready, unacked)
				}
			}
			t.Logf("%s: %d checks passed: %s", client, len(res.Passed), strings.Join(res.Passed, "; "))
		})
	}
}

// debianPython is Debian's own interpreter, which sees Debian's python3-stomp (another python3 on
// the PATH may not).
const debianPython = "/usr/bin/python3"

// TestPythonStomp runs Debian's python3-stomp (stomp.py) over TCP, as STOMP 1.1 (its default) and 1.2:
// clients/stomp_py.py.
func TestPythonStomp(t *testing.T) {
	if err := exec.Command(debianPython, "-c", "import stomp").Run(); err != nil {
		missingTool(t, "python3-stomp (Debian package)")
	}
	for _, version := range []string{"1.1", "1.2"} {
		t.Run(version, func(t *testing.T) {
			ts := startServer(t, defaultHeartBeats)
			res := runClientScript(t, "clients", debianPython, "stomp_py.py", ts.TCPAddr, version)
			if ready, unacked, _ := ts.Broker.QueueDepth("/queue/clients.python"); ready != 0 || unacked != 0 {
				t.Errorf("the queue holds %d ready and %d unacked messages after the client acked them all", ready, unacked)
			}
			t.Logf("stomp.py %s: %d checks passed: %s", version, len(res.Passed), strings.Join(res.Passed, "; "))
		})
	}
}

// TestRubyStomp runs Debian's ruby-stomp over TCP, as STOMP 1.0 (its default) and as 1.2 with CRLF
// line endings and heart-beats: clients/stomp_rb.rb.
func TestRubyStomp(t *testing.T) {
	if err := exec.Command("ruby", "-e", "require 'stomp'").Run(); err != nil {
		missingTool(t, "ruby-stomp (Debian package)")
	}
	for _, version := range []string{"1.0", "1.2"} {
		t.Run(version, func(t *testing.T) {
			ts := startServer(t, defaultHeartBeats)
			res := runClientScript(t, "clients", "ruby", "stomp_rb.rb", ts.TCPAddr, version)
			if ready, unacked, _ := ts.Broker.QueueDepth("/queue/clients.ruby"); ready != 0 || unacked != 0 {
				t.Errorf("the queue holds %d ready and %d unacked messages after the client acked them all", ready, unacked)
			}
			t.Logf("ruby-stomp %s: %d checks passed: %s", version, len(res.Passed), strings.Join(res.Passed, "; "))
		})
	}
}

// TestSpringClientFrames replays the frames Spring's WebSocketStompClient writes (it cannot be
// installed here): subprotocols v10/v11/v12.stomp, CONNECT with accept-version:1.1,1.2 and heart-beats
// 0,0 or 10000,10000, a text message per frame with content-length and Spring's content-type, and a
// lone EOL as its heart-beat.
func TestSpringClientFrames(t *testing.T) {
	ts := startServer(t, defaultHeartBeats)
	for _, hb := range []string{"0,0", "10000,10000"} {
		t.Run(hb, func(t *testing.T) {
			c := ts.rawWS(t, "v10.stomp", "v11.stomp", "v12.stomp")
			connected := c.connect("1.1,1.2", "heart-beat:"+hb)
			if v, got := connected.Get("version"), connected.Get("heart-beat"); v != "1.2" || got != hb {
				t.Fatalf("CONNECTED version %q heart-beat %q, want 1.2 and %s", v, got, hb)
			}
			c.send("SUBSCRIBE\nid:0\ndestination:/topic/spring\nreceipt:r-0\n\n\x00")
			c.expect("RECEIPT")
			c.send("\n") // Spring's heart-beat
			body := "{\"greeting\":\"héllo\"}"
			c.send("SEND\ndestination:/topic/spring\ncontent-type:application/json\ncontent-length:" + strconv.Itoa(len(body)) + "\n\n" + body + "\x00")
			m := c.expect("MESSAGE")
			if string(m.Body) != body || m.Get("content-type") != "application/json" || m.Get("subscription") != "0" {
				t.Fatalf("MESSAGE %s", m)
			}
			c.send("DISCONNECT\nreceipt:r-1\n\n\x00")
			c.expect("RECEIPT")
			c.expectClosed()
		})
	}
}
