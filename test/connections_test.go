package test

import (
	"strings"
	"testing"
	"time"

	"github.com/stompd/stompd/stompws/frame"
)

// TestConnectionsView: the server's view of its connections, for operators, as real clients connect,
// subscribe and send, and closing one from there.
func TestConnectionsView(t *testing.T) {
	ts := startServer(t)
	rc := ts.rawOver(t, "ws")
	rc.connect("1.2", "name:watcher", "heart-beat:0,0")
	rc.send("SUBSCRIBE\nid:a\ndestination:/topic/x\nreceipt:r\n\n\x00")
	rc.expect(frame.RECEIPT)
	rc.send("SUBSCRIBE\nid:b\ndestination:/queue/y\nack:client-individual\nreceipt:r\n\n\x00")
	rc.expect(frame.RECEIPT)
	rc.send("SEND\ndestination:/topic/x\nreceipt:s\n\nhello\x00")
	rc.expect(frame.MESSAGE)
	rc.expect(frame.RECEIPT)
	other := ts.rawOver(t, "tcp")
	other.connect("1.2")

	var conns = ts.Server.Connections()
	if len(conns) != 2 {
		t.Fatalf("%d connections", len(conns))
	}
	c := conns[0]
	if c.Name != "watcher" || c.Transport != "ws" || c.Version != "1.2" || c.Subprotocol == "" || c.Remote == "" ||
		time.Since(c.Opened) > time.Minute || c.MessagesIn != 1 || c.BytesIn == 0 {
		t.Errorf("connection %+v", c)
	}
	if len(c.Subscriptions) != 2 || c.Subscriptions[0].Destination != "/topic/x" || c.Subscriptions[1].Ack != "client-individual" {
		t.Errorf("subscriptions %+v", c.Subscriptions)
	}
	waitFor(t, "the bytes written counted", func() bool {
		got, _ := ts.Server.Connection(c.Session)
		return got.BytesOut > 0
	})
	if conns[1].Transport != "tcp" {
		t.Errorf("second connection %+v", conns[1])
	}

	if ts.Server.CloseConnection("no-such-session") {
		t.Error("closed a session that does not exist")
	}
	if !ts.Server.CloseConnection(c.Session) {
		t.Fatal("CloseConnection found no session")
	}
	f := rc.expectError("closed by an operator")
	if !strings.Contains(f.Get("message"), "operator") {
		t.Errorf("ERROR %s", f)
	}
	rc.expectClosed()
	waitFor(t, "the connection gone from the view", func() bool { return len(ts.Server.Connections()) == 1 })
}
