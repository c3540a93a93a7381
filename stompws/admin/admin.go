// Package admin is stompd's management API: JSON over HTTP for operators and scripts, on read-only
// views of a stompws.Server and its broker.Broker and a few actions (close a connection, purge or
// delete a queue, publish a message).
//
// Access: with authentication on, a request needs a user with the admin role, by HTTP Basic (users
// file) or Bearer (token); without credentials it gets 401 with WWW-Authenticate, without the role 403.
// With authentication off, only clients on the loopback interface that address it by a loopback name
// (localhost, 127.0.0.1, [::1]; in the Host header, and in Origin when a browser sends one) may use
// it, 403 otherwise: a web page whose own host name a DNS rebinding pointed at 127.0.0.1 does not get
// in. A mutating call (POST, DELETE) from a browser of another origin is refused (403: its Origin header
// must name the request's own host), and POST takes application/json only, which a cross-site form
// cannot send; every mutating call is logged with who made it.
//
// Concurrency: an API is safe for concurrent use. Its rate sampler runs on a goroutine of its own from
// New until Close.
package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws"
	"github.com/stompd/stompd/stompws/auth"
	"github.com/stompd/stompd/stompws/frame"
)

// AdminRole is the role a user needs for the management API.
const AdminRole = "admin"

// Config configures an API.
type Config struct {
	Broker *broker.Broker
	Server *stompws.Server
	// Authenticator checks the credentials of requests; nil or off allows loopback clients only.
	Authenticator *auth.Authenticator
	// Policy decides what a publish may do, as for a STOMP SEND of the same user; nil allows it.
	Policy *auth.Policy
	// Node and Version describe this node in the overview; Mode is memory, durable or cluster, and
	// ModeDetail says what that means here (where the store is).
	Node, Version, Mode, ModeDetail string
	// MemoryLimit is the -max-memory bound in bytes (0: none); MemoryHeld reports the bytes held
	// for clients now. Either may be zero or nil.
	MemoryLimit int64
	MemoryHeld  func() int64
	// Peers, in a cluster, returns the figures the other live nodes last reported (see Figures);
	// nil on one node.
	Peers func() []NodeFigures
	// Limits bound a publish as they bound a SEND frame: the body and headers together within
	// MaxFrameBytes, at most MaxHeaders headers, each name:value within MaxHeaderBytes. Zero fields
	// take frame's defaults.
	Limits frame.Limits
	// Logger receives the mutating calls, with who made them. Default: discard.
	Logger *slog.Logger
}

// API serves the management API. Build it with New; Close stops its sampler.
type API struct {
	cfg     Config
	log     *slog.Logger
	started time.Time
	mux     *http.ServeMux
	rates   *rateSampler
}

// New returns the API for cfg and starts its rate sampler.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	a := &API{cfg: cfg, log: cfg.Logger, started: time.Now(), mux: http.NewServeMux(), rates: newRateSampler(cfg.Broker)}
	a.routes()
	return a
}

// SetPeers sets where GET /api/nodes and the overview's cluster figures read the other nodes from
// (a cluster's node heart-beats). Call it before serving.
func (a *API) SetPeers(peers func() []NodeFigures) { a.cfg.Peers = peers }

// NodeFigures is what one node tells operators of itself; in a cluster each node sends its own with
// its heart-beats, so that any node's API shows them all (at most a heart-beat old).
type NodeFigures struct {
	Name    string    `json:"name"`
	This    bool      `json:"this,omitempty"` // the node that answered
	Version string    `json:"version"`
	Mode    string    `json:"mode"` // memory, durable or cluster
	Started time.Time `json:"started"`
	// AsOf is when the figures were measured.
	AsOf          time.Time `json:"as_of"`
	Connections   int       `json:"connections"`
	Subscriptions int       `json:"subscriptions"`
	// PublishedPerSecond and DeliveredPerSecond are over the last minute; Published and Delivered
	// are totals since the node started. Published counts what clients (and this API) published on
	// this node, not what it received from other nodes, so that the nodes' figures add up to the
	// cluster's.
	PublishedPerSecond float64 `json:"published_per_second"`
	DeliveredPerSecond float64 `json:"delivered_per_second"`
	Published          uint64  `json:"published"`
	Delivered          uint64  `json:"delivered"`
	MemoryHeld         int64   `json:"memory_held_bytes"`
	MemoryLimit        int64   `json:"memory_limit_bytes"`
}

// Figures measures this node now. It is cheap (counters, no list of connections): a cluster calls it
// at every heart-beat.
func (a *API) Figures() NodeFigures {
	st := a.cfg.Broker.Stats()
	published, delivered := a.rates.perSecond()
	f := NodeFigures{Name: a.cfg.Node, Version: a.cfg.Version, Mode: a.cfg.Mode, Started: a.started, AsOf: time.Now(),
		Connections: a.cfg.Server.SessionCount(), Subscriptions: st.Subscriptions,
		PublishedPerSecond: published, DeliveredPerSecond: delivered, MemoryLimit: a.cfg.MemoryLimit}
	f.Published, f.Delivered = totals(st)
	if a.cfg.MemoryHeld != nil {
		f.MemoryHeld = a.cfg.MemoryHeld()
	}
	return f
}

// allNodes is this node (marked This) and its peers, by name.
func (a *API) allNodes() []NodeFigures {
	self := a.Figures()
	self.This = true
	nodes := []NodeFigures{self}
	if a.cfg.Peers != nil {
		nodes = append(nodes, a.cfg.Peers()...)
	}
	slices.SortFunc(nodes, func(x, y NodeFigures) int { return strings.Compare(x.Name, y.Name) })
	return nodes
}

// Close stops the rate sampler.
func (a *API) Close() { a.rates.stop() }

// ServeHTTP implements http.Handler: access rules first, then the endpoint.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller, ok := a.admit(w, r)
	if !ok {
		return
	}
	who := caller.User
	if !a.cfg.Authenticator.Enabled() {
		who = "loopback"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "cross-origin requests may not change anything")
			return
		}
		a.log.Info("management API call", "method", r.Method, "path", r.URL.Path, "by", who, "remote", r.RemoteAddr)
	}
	w.Header().Set("Cache-Control", "no-store")
	a.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
}

// callerKey is the request context key of the admitted caller (an auth.Principal; empty with
// authentication off), so that endpoints act as the user admit checked rather than checking again.
type callerKey struct{}

// callerOf returns the caller ServeHTTP admitted.
func callerOf(r *http.Request) auth.Principal {
	p, _ := r.Context().Value(callerKey{}).(auth.Principal)
	return p
}

// Gate serves h, the console page, to those the API serves, by the same rules: a browser without
// credentials gets the 401 challenge, and then sends them with the page's own API calls.
func (a *API) Gate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.admit(w, r); ok {
			h.ServeHTTP(w, r)
		}
	})
}

// admit applies the access rules and returns who is calling (the zero Principal with authentication
// off), or answers and returns false.
func (a *API) admit(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	if !a.cfg.Authenticator.Enabled() {
		if !loopback(r.RemoteAddr) {
			writeError(w, http.StatusForbidden, "with authentication off, the management API answers clients on the loopback interface only")
			return auth.Principal{}, false
		}
		if !loopbackHost(r.Host) || !loopbackOrigin(r) {
			writeError(w, http.StatusForbidden, "with authentication off, the management API answers requests addressed to localhost or a loopback address only")
			return auth.Principal{}, false
		}
		return auth.Principal{}, true
	}
	creds, ok := credentials(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="stompd", charset="UTF-8"`)
		w.Header().Add("WWW-Authenticate", `Bearer realm="stompd"`)
		writeError(w, http.StatusUnauthorized, "authentication required: HTTP Basic or a Bearer token of a user with the admin role")
		return auth.Principal{}, false
	}
	p, err := a.cfg.Authenticator.Authenticate(creds)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="stompd", charset="UTF-8"`)
		w.Header().Add("WWW-Authenticate", `Bearer realm="stompd", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "authentication failed")
		return auth.Principal{}, false
	}
	if slices.Contains(p.Roles, AdminRole) {
		return p, true
	}
	writeError(w, http.StatusForbidden, fmt.Sprintf("user %q lacks the %s role", p.User, AdminRole))
	return auth.Principal{}, false
}

// credentials reads an Authorization header: Bearer or Basic.
func credentials(r *http.Request) (auth.Credentials, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return auth.Credentials{}, false
	}
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return auth.Credentials{Bearer: strings.TrimSpace(h[7:])}, true
	}
	if login, passcode, ok := r.BasicAuth(); ok {
		return auth.Credentials{Login: login, Passcode: passcode}, true
	}
	return auth.Credentials{}, false
}

// loopback reports whether a remote address is on the loopback interface.
func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackHost reports whether a Host header (host, host:port, [v6]:port) names the loopback
// interface: localhost or a loopback address.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackOrigin reports whether a request carries no Origin header or one of a loopback host.
func loopbackOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && loopbackHost(u.Host)
}

// sameOrigin reports whether a mutating request may be served: no Origin header (not a browser's
// cross-site request), or one naming the request's own host.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

func (a *API) routes() {
	m := a.mux
	m.HandleFunc("GET /api/overview", a.overview)
	m.HandleFunc("GET /api/nodes", a.nodes)
	m.HandleFunc("GET /api/connections", a.connections)
	m.HandleFunc("GET /api/connections/{session}", a.connection)
	m.HandleFunc("DELETE /api/connections/{session}", a.closeConnection)
	m.HandleFunc("GET /api/queues", a.queues)
	m.HandleFunc("GET /api/queues/", a.queue)
	m.HandleFunc("DELETE /api/queues/", a.deleteQueue)
	m.HandleFunc("GET /api/topics", a.topics)
	m.HandleFunc("POST /api/publish", a.publish)
	m.HandleFunc("/api/", a.noEndpoint)
}

// noEndpoint answers what no endpoint serves: 405 with Allow when the path takes other methods, 404
// otherwise; JSON, as every answer of the API.
func (a *API) noEndpoint(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, pattern := a.mux.Handler(probe); pattern != "/api/" {
			allowed = append(allowed, method)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, r.Method+" is not served at "+r.URL.Path+"; it takes "+strings.Join(allowed, ", "))
		return
	}
	writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
}

// overview is GET /api/overview.
func (a *API) overview(w http.ResponseWriter, _ *http.Request) {
	st := a.cfg.Broker.Stats()
	total, byTransport := a.cfg.Server.ConnectionsByTransport()
	published, delivered := a.rates.perSecond()
	totalPublished, totalDelivered := totals(st)
	var held int64
	if a.cfg.MemoryHeld != nil {
		held = a.cfg.MemoryHeld()
	}
	out := map[string]any{
		"node": a.cfg.Node, "version": a.cfg.Version, "mode": a.cfg.Mode, "mode_detail": a.cfg.ModeDetail,
		"uptime_seconds": int64(time.Since(a.started).Seconds()),
		"connections":    map[string]any{"total": total, "by_transport": byTransport},
		"subscriptions":  st.Subscriptions,
		"destinations": map[string]int{"topics": st.Destinations[broker.KindTopic], "queues": st.Destinations[broker.KindQueue],
			"reply_queues": st.Destinations[broker.KindReplyQueue]},
		"rates_per_second": map[string]float64{"published": published, "delivered": delivered},
		"totals":           map[string]uint64{"published": totalPublished, "delivered": totalDelivered},
		"queues":           map[string]int{"ready": st.QueuedMessages, "unacked": st.UnackedMessages},
		"memory":           map[string]int64{"held_bytes": held, "limit_bytes": a.cfg.MemoryLimit},
		"streams":          st.Streams, "durable_subscriptions": st.DurableSubscriptions,
	}
	if a.cfg.Peers != nil {
		out["cluster"] = clusterTotals(a.allNodes())
	}
	writeJSON(w, http.StatusOK, out)
}

// totals are the messages published on this node (by its clients and this API, not those received
// from other nodes of a cluster) and the deliveries it made, since it started.
func totals(st broker.Stats) (published, delivered uint64) {
	for k := range broker.KindCount {
		published += st.Published[k]
		delivered += st.Delivered[k]
	}
	return published - min(published, st.PublishedRemote), delivered
}

// clusterTotals sums the nodes' figures for the overview of a cluster node.
func clusterTotals(nodes []NodeFigures) map[string]any {
	var conns, subs int
	var published, delivered float64
	var totalPublished, totalDelivered uint64
	var held, limit int64
	for _, n := range nodes {
		conns += n.Connections
		subs += n.Subscriptions
		published += n.PublishedPerSecond
		delivered += n.DeliveredPerSecond
		totalPublished += n.Published
		totalDelivered += n.Delivered
		held += n.MemoryHeld
		limit += n.MemoryLimit
	}
	return map[string]any{
		"nodes": len(nodes), "connections": conns, "subscriptions": subs,
		"rates_per_second": map[string]float64{"published": published, "delivered": delivered},
		"totals":           map[string]uint64{"published": totalPublished, "delivered": totalDelivered},
		"memory":           map[string]int64{"held_bytes": held, "limit_bytes": limit},
	}
}

// nodes is GET /api/nodes: this node alone, or every node of the cluster it hears from, by name,
// each with its figures.
func (a *API) nodes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"nodes": a.allNodes(), "this": a.cfg.Node})
}

// connectionJSON is one connection as the API shows it.
type connectionJSON struct {
	Session       string             `json:"session"`
	Name          string             `json:"name"`
	User          string             `json:"user,omitempty"`
	Remote        string             `json:"remote"`
	Transport     string             `json:"transport"`
	Version       string             `json:"version,omitempty"`
	Opened        time.Time          `json:"opened"`
	HeartBeat     [2]int64           `json:"heart_beat_ms"` // out, in
	Subscriptions []subscriptionJSON `json:"subscriptions"`
	Messages      map[string]uint64  `json:"messages"`
	Bytes         map[string]uint64  `json:"bytes"`
}

// subscriptionJSON is one subscription of a connection as the API shows it.
type subscriptionJSON struct {
	ID          string `json:"id"`
	Destination string `json:"destination"`
	Ack         string `json:"ack"`
}

func connectionView(c stompws.ConnectionInfo) connectionJSON {
	subs := make([]subscriptionJSON, 0, len(c.Subscriptions))
	for _, s := range c.Subscriptions {
		subs = append(subs, subscriptionJSON{s.ID, s.Destination, s.Ack})
	}
	return connectionJSON{
		Session: c.Session, Name: c.Name, User: c.User, Remote: c.Remote, Transport: c.Transport, Version: c.Version,
		Opened: c.Opened, HeartBeat: [2]int64{c.HeartBeatOut.Milliseconds(), c.HeartBeatIn.Milliseconds()},
		Subscriptions: subs,
		Messages:      map[string]uint64{"in": c.MessagesIn, "out": c.MessagesOut},
		Bytes:         map[string]uint64{"in": c.BytesIn, "out": c.BytesOut},
	}
}

// connections is GET /api/connections?user=&remote=&offset=&limit= (limit 100 by default, 1000 at
// most), oldest first.
func (a *API) connections(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, limit, err := paging(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	user, remote := q.Get("user"), q.Get("remote")
	var matched []stompws.ConnectionInfo
	for _, c := range a.cfg.Server.Connections() {
		if (user != "" && c.User != user) || (remote != "" && !strings.Contains(c.Remote, remote)) {
			continue
		}
		matched = append(matched, c)
	}
	page, total := onePage(matched, offset, limit)
	views := make([]connectionJSON, len(page)) // only the page is turned into JSON views
	for i, c := range page {
		views[i] = connectionView(c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": total, "offset": offset, "limit": limit, "connections": views})
}

// onePage returns the items from offset, at most limit of them (never nil, so that JSON shows []),
// and how many there are in all.
func onePage[T any](items []T, offset, limit int) (page []T, total int) {
	total = len(items)
	start := min(offset, total)
	page = items[start : start+min(limit, total-start)]
	if page == nil {
		page = []T{}
	}
	return page, total
}

// paging reads offset and limit (100 by default, 1000 at most).
func paging(q url.Values) (offset, limit int, err error) {
	limit = 100
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, errors.New("offset: want a whole number, 0 or more")
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return 0, 0, errors.New("limit: want a whole number from 1 to 1000")
		}
	}
	return offset, limit, nil
}

// connection is GET /api/connections/{session}.
func (a *API) connection(w http.ResponseWriter, r *http.Request) {
	c, ok := a.cfg.Server.Connection(r.PathValue("session"))
	if !ok {
		writeError(w, http.StatusNotFound, "no connection with session "+strconv.Quote(r.PathValue("session")))
		return
	}
	writeJSON(w, http.StatusOK, connectionView(c))
}

// closeConnection is DELETE /api/connections/{session}: the client gets ERROR "closed by an operator".
func (a *API) closeConnection(w http.ResponseWriter, r *http.Request) {
	if !a.cfg.Server.CloseConnection(r.PathValue("session")) {
		writeError(w, http.StatusNotFound, "no connection with session "+strconv.Quote(r.PathValue("session")))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"closed": r.PathValue("session")})
}

// queueJSON is one queue as the API shows it.
type queueJSON struct {
	Name        string `json:"name"`
	Destination string `json:"destination"`
	Kind        string `json:"kind"`
	Ready       int    `json:"ready"`
	Unacked     int    `json:"unacked"`
	ReadyBytes  int64  `json:"ready_bytes"`
	Consumers   int    `json:"consumers"`
	Published   uint64 `json:"published"`
	Delivered   uint64 `json:"delivered"`
}

func queueView(q broker.QueueInfo) queueJSON {
	kind, name := "queue", strings.TrimPrefix(q.Destination, "/queue/")
	if q.Kind == broker.KindReplyQueue {
		kind, name = "reply_queue", q.Destination
	}
	return queueJSON{Name: name, Destination: q.Destination, Kind: kind, Ready: q.Ready, Unacked: q.Unacked, ReadyBytes: q.ReadyBytes,
		Consumers: q.Consumers, Published: q.Published, Delivered: q.Delivered}
}

// queues is GET /api/queues?name=&offset=&limit=, paged as connections are; name keeps the queues
// whose destination contains it.
func (a *API) queues(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := paging(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	name := r.URL.Query().Get("name")
	var out []queueJSON
	for _, q := range a.cfg.Broker.Queues() {
		if strings.Contains(q.Destination, name) {
			out = append(out, queueView(q))
		}
	}
	out, total := onePage(out, offset, limit)
	writeJSON(w, http.StatusOK, map[string]any{"total": total, "offset": offset, "limit": limit, "queues": out})
}

// queueName reads the queue a request under /api/queues/ names: the part of its destination after
// /queue/, from the path as sent and then unescaped, so that a slash inside a name sent escaped (%2F,
// as the CLI and the console send every one) is part of the name and never taken for the /contents
// suffix, which is the unescaped last segment of the path. A name sent with raw slashes still reads
// as one name, suffix apart.
func queueName(r *http.Request) (name string, contents bool, err error) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/api/queues/")
	rest, contents = strings.CutSuffix(rest, "/contents")
	name, err = url.PathUnescape(rest)
	if err == nil && name == "" {
		err = errors.New("no queue named")
	}
	return name, contents, err
}

// queue is GET /api/queues/{name}; {name} is the part after /queue/.
func (a *API) queue(w http.ResponseWriter, r *http.Request) {
	name, contents, err := queueName(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "queue name: "+err.Error())
		return
	}
	if contents {
		name += "/contents" // only DELETE has the suffix
	}
	dest := "/queue/" + name
	q, ok := a.cfg.Broker.QueueInfo(dest)
	if !ok {
		writeError(w, http.StatusNotFound, "no queue "+strconv.Quote(dest))
		return
	}
	writeJSON(w, http.StatusOK, queueView(q))
}

// deleteQueue is DELETE /api/queues/{name}/contents (purge) and DELETE /api/queues/{name}.
func (a *API) deleteQueue(w http.ResponseWriter, r *http.Request) {
	name, contents, err := queueName(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "queue name: "+err.Error())
		return
	}
	if contents {
		dest := "/queue/" + name
		n, err := a.cfg.Broker.PurgeQueue(dest)
		if err != nil {
			writeBrokerError(w, dest, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"queue": dest, "purged": n})
		return
	}
	dest := "/queue/" + name
	if err := a.cfg.Broker.RemoveQueue(dest); err != nil {
		writeBrokerError(w, dest, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": dest})
}

// topics is GET /api/topics?name=&offset=&limit=, paged and filtered as queues are.
func (a *API) topics(w http.ResponseWriter, r *http.Request) {
	type topicJSON struct {
		Destination string `json:"destination"`
		Subscribers int    `json:"subscribers"`
		Retained    int    `json:"retained"`
		Stream      bool   `json:"stream"`
	}
	offset, limit, err := paging(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	name := r.URL.Query().Get("name")
	var out []topicJSON
	for _, t := range a.cfg.Broker.Topics() {
		if strings.Contains(t.Destination, name) {
			out = append(out, topicJSON{t.Destination, t.Subscribers, t.Retained, t.Stream})
		}
	}
	out, total := onePage(out, offset, limit)
	writeJSON(w, http.StatusOK, map[string]any{"total": total, "offset": offset, "limit": limit, "topics": out})
}

// publishRequest is POST /api/publish's body.
type publishRequest struct {
	Destination string            `json:"destination"`
	Body        *string           `json:"body"`
	BodyBase64  *string           `json:"body_base64"`
	Headers     map[string]string `json:"headers"`
}

// publish is POST /api/publish: the message is published as a client of the calling user would
// publish it, through the same authorization and the destination's policies.
func (a *API) publish(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "send the message as application/json: {\"destination\", \"body\" or \"body_base64\", \"headers\"}")
		return
	}
	// Room for a body of the frame limit in base64 or JSON-escaped, and its headers.
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(2*a.cfg.Limits.MaxFrameBytes+64<<10)))
	dec.DisallowUnknownFields()
	var req publishRequest
	err := dec.Decode(&req)
	if err == nil && dec.More() {
		err = errors.New("more after the JSON object")
	}
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request larger than %d bytes", tooLarge.Limit))
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		return
	}
	var body []byte
	switch {
	case req.Body != nil && req.BodyBase64 != nil:
		writeError(w, http.StatusBadRequest, "give body or body_base64, not both")
		return
	case req.BodyBase64 != nil:
		if body, err = base64.StdEncoding.DecodeString(*req.BodyBase64); err != nil {
			writeError(w, http.StatusBadRequest, "body_base64 is not base64")
			return
		}
	case req.Body != nil:
		body = []byte(*req.Body)
	}
	if _, err := broker.ParseDestination(req.Destination); err != nil {
		writeBrokerError(w, req.Destination, err)
		return
	}
	caller := callerOf(r)
	if a.cfg.Authenticator.Enabled() && a.cfg.Policy != nil && !a.cfg.Policy.CanPublish(caller, req.Destination) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("user %q may not publish to %s", caller.User, req.Destination))
		return
	}
	m := &broker.Message{Destination: req.Destination, Body: body,
		Sender: broker.Identity{Session: "management-api", Name: "management API", User: caller.User}}
	for name, value := range req.Headers {
		if name == "" || strings.ContainsRune(name, 0) || strings.ContainsRune(value, 0) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("header %q: a name may not be empty, and neither name nor value may hold a NUL", name))
			return
		}
		if reservedHeader(name) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("header %q is set by the server", name))
			return
		}
		m.Header = append(m.Header, broker.Header{Name: name, Value: value})
	}
	if status, problem := a.checkLimits(m); problem != "" {
		writeError(w, status, problem)
		return
	}
	report, err := a.cfg.Broker.PublishReported(m)
	if err != nil {
		writeBrokerError(w, req.Destination, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message_id": m.ID, "routed": report.Routed(), "deliveries": report.Deliveries,
		"kept": report.Kept, "queued": report.Queued})
}

// checkLimits applies the SEND frame limits to a message to publish: the number of headers and the
// length of each (name:value), as 400, and the size of the whole frame (command, destination,
// headers, body), as 413; it returns the status and the problem, or "" when m is within them.
func (a *API) checkLimits(m *broker.Message) (int, string) {
	l := a.cfg.Limits
	if len(m.Header) > l.MaxHeaders {
		return http.StatusBadRequest, fmt.Sprintf("%d headers, the limit is %d", len(m.Header), l.MaxHeaders)
	}
	size := len("SEND\ndestination:\n\n") + len(m.Destination) + len(m.Body)
	for _, h := range m.Header {
		line := len(h.Name) + 1 + len(h.Value)
		if line > l.MaxHeaderBytes {
			return http.StatusBadRequest, fmt.Sprintf("header %q of %d bytes, the limit is %d", h.Name, line, l.MaxHeaderBytes)
		}
		size += line + 1
	}
	if size > l.MaxFrameBytes {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("message of %d bytes as a frame, the limit is %d", size, l.MaxFrameBytes)
	}
	return 0, ""
}

// reservedHeader reports a header the server sets on messages itself.
func reservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "destination", "content-length", "message-id", "subscription", "ack", "redelivered", "user-id",
		"transaction", "receipt", "x-stream-offset":
		return true
	}
	return false
}

// writeBrokerError maps a broker refusal to an HTTP status.
func writeBrokerError(w http.ResponseWriter, dest string, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, broker.ErrUnknownDestination), errors.Is(err, broker.ErrInvalidDestination):
		status = http.StatusBadRequest
	case errors.Is(err, broker.ErrNoRoute):
		status = http.StatusNotFound
	case errors.Is(err, broker.ErrReadOnly):
		status = http.StatusForbidden
	case errors.Is(err, broker.ErrQueueFull), errors.Is(err, broker.ErrTooManyDestinations),
		errors.Is(err, broker.ErrRetainedFull), errors.Is(err, broker.ErrStoreUnavailable):
		status = http.StatusServiceUnavailable
	}
	writeError(w, status, err.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}

// rateSampler reads the broker's message totals every rateInterval and keeps the last minute of them.
type rateSampler struct {
	b       *broker.Broker
	mu      sync.Mutex
	samples []rateSample // oldest first, at most rateSamples
	done    chan struct{}
	stopped sync.WaitGroup
}

type rateSample struct {
	at                   time.Time
	published, delivered uint64
}

const (
	rateInterval = 5 * time.Second
	rateSamples  = 13 // a minute of intervals
)

func newRateSampler(b *broker.Broker) *rateSampler {
	s := &rateSampler{b: b, done: make(chan struct{})}
	s.sample()
	s.stopped.Add(1)
	go func() {
		defer s.stopped.Done()
		t := time.NewTicker(rateInterval)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *rateSampler) sample() {
	pub, del := totals(s.b.Stats())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, rateSample{time.Now(), pub, del})
	if len(s.samples) > rateSamples {
		s.samples = s.samples[1:]
	}
}

// perSecond returns the published and delivered rates over the samples kept, up to the last minute.
func (s *rateSampler) perSecond() (published, delivered float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) < 2 {
		return 0, 0
	}
	first, last := s.samples[0], s.samples[len(s.samples)-1]
	secs := last.at.Sub(first.at).Seconds()
	if secs <= 0 {
		return 0, 0
	}
	return float64(last.published-first.published) / secs, float64(last.delivered-first.delivered) / secs
}

func (s *rateSampler) stop() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.stopped.Wait()
}
