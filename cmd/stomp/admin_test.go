package main

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws/admin"
	"github.com/stompd/stompd/stompws/stompwstest"
)

func TestAdminCommand(t *testing.T) {
	s := stompwstest.Start(t, stompwstest.Config{})
	api := admin.New(admin.Config{Broker: s.Broker, Server: s.STOMP, Node: "n1", Version: "test", Mode: "memory"})
	t.Cleanup(api.Close)
	hs := httptest.NewServer(api)
	t.Cleanup(hs.Close)
	env := map[string]string{"STOMP_ADMIN_URL": hs.URL}

	r := runStomp(t, "", env, "admin", "publish", "-H", "color:blue", "/queue/jobs", "hello")
	mustSucceed(t, r, "admin publish")
	if !strings.Contains(r.stdout, "queued:") || !strings.Contains(r.stdout, "true") {
		t.Errorf("publish printed %q", r.stdout)
	}
	r = runStomp(t, "", env, "admin", "queues")
	mustSucceed(t, r, "admin queues")
	if !strings.Contains(r.stdout, "QUEUE") || !strings.Contains(r.stdout, "/queue/jobs") {
		t.Errorf("queues printed %q", r.stdout)
	}
	r = runStomp(t, "", env, "admin", "-json", "overview")
	mustSucceed(t, r, "admin overview")
	if !strings.Contains(r.stdout, `"node":"n1"`) {
		t.Errorf("overview -json printed %q", r.stdout)
	}
	r = runStomp(t, "", env, "admin", "purge", "jobs")
	mustSucceed(t, r, "admin purge")
	if !strings.Contains(r.stdout, "purged:") {
		t.Errorf("purge printed %q", r.stdout)
	}
	// Names that would read as other paths: each reaches its own queue only.
	for _, dest := range []string{"/queue/jobs", "/queue/jobs/contents", "/queue/.."} {
		mustSucceed(t, runStomp(t, "", env, "admin", "publish", dest, "m"), "admin publish to "+dest)
	}
	for _, name := range []string{"jobs/contents", "/queue/.."} {
		r = runStomp(t, "", env, "admin", "purge", name)
		mustSucceed(t, r, "admin purge "+name)
	}
	for dest, want := range map[string]int{"/queue/jobs": 1, "/queue/jobs/contents": 0, "/queue/..": 0} {
		if q, ok := s.Broker.QueueInfo(dest); !ok || q.Ready != want {
			t.Errorf("%s after the purges: %+v, want %d ready", dest, q, want)
		}
	}
	// A list longer than one page of the API is read whole.
	for i := range 1005 {
		if err := s.Broker.Publish(&broker.Message{Destination: fmt.Sprintf("/queue/many.%04d", i), Body: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	r = runStomp(t, "", env, "admin", "-json", "queues")
	mustSucceed(t, r, "admin queues past a page")
	var listed struct {
		Total  int              `json:"total"`
		Queues []map[string]any `json:"queues"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil {
		t.Fatal(err)
	}
	if listed.Total < 1005 || len(listed.Queues) != listed.Total {
		t.Errorf("queues past a page: total %d, %d listed", listed.Total, len(listed.Queues))
	}
	r = runStomp(t, "", env, "admin", "queues")
	if !strings.Contains(r.stdout, "/queue/many.1004") {
		t.Error("the table stops before the last queue")
	}
	r = runStomp(t, "", env, "admin", "close", "no-such-session")
	if r.code != 1 || !strings.Contains(r.stderr, "404") {
		t.Errorf("closing an unknown session: exit %d, %q", r.code, r.stderr)
	}
	r = runStomp(t, "", env, "admin", "frobnicate")
	if r.code != 2 {
		t.Errorf("an unknown action: exit %d", r.code)
	}
	r = runStomp(t, "", env, "admin", "nodes")
	mustSucceed(t, r, "admin nodes")
	if !strings.Contains(r.stdout, "n1 (this)") || !strings.Contains(r.stdout, "memory") {
		t.Errorf("nodes printed %q", r.stdout)
	}
	r = runStomp(t, "", env, "admin", "connections")
	mustSucceed(t, r, "admin connections")
	if !strings.Contains(r.stdout, "SESSION") {
		t.Errorf("connections printed %q", r.stdout)
	}
}
