// Package chat is the built-in chat room. Clients SEND text to an application destination (/app/chat
// by default); the room validates it, stamps it with the sender's id and display name, and publishes
// it as JSON on a read-only topic (/topic/chat) that keeps the recent history for newcomers. It also
// announces members joining and leaving, and hands each new subscriber the current member list. It
// uses only the broker's public API.
package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/stompd/stompd/broker"
)

// Defaults for Options fields left at their zero value.
const (
	DefaultTopic     = "/topic/chat"
	DefaultApp       = "/app/chat"
	DefaultHistory   = 50
	DefaultMaxLength = 1000 // characters (runes) of one message's text
)

// ErrInvalidMessage is returned to a sender whose text is empty or too long; its text is what the
// client sees in the ERROR frame.
var ErrInvalidMessage = errors.New("invalid chat message")

// Options configures a Room. The zero value uses the defaults above.
type Options struct {
	Topic     string // where messages and presence events are published
	App       string // where clients SEND their text
	History   int    // messages kept for newcomers; negative disables history
	MaxLength int    // longest text in characters
	Now       func() time.Time
	// Peers, in a cluster, are the other nodes' rooms: one room across the cluster. Nil for a room
	// on one node.
	Peers Peers
}

// Peers is a room's view of the rooms of the other nodes of a cluster. Messages, joins and leaves
// reach them as topic messages do; what Peers adds is who is there, for the member list a newcomer
// gets, and word of a node that went away with its members.
type Peers interface {
	// Share tells the other nodes this node's members. Called on every join and leave, with no room
	// lock held; it must not block.
	Share(members []Member)
	// Members returns the members on the other nodes now.
	Members() []Member
}

func (o Options) withDefaults() Options {
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if o.App == "" {
		o.App = DefaultApp
	}
	if o.History == 0 {
		o.History = DefaultHistory
	}
	if o.MaxLength <= 0 {
		o.MaxLength = DefaultMaxLength
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Policies returns the destination policy the room needs: its topic is read-only for clients and keeps
// the last History messages for newcomers. Pass it to broker.New ahead of operator policies.
func Policies(opts Options) []broker.DestinationPolicy {
	opts = opts.withDefaults()
	return []broker.DestinationPolicy{{Pattern: opts.Topic, ReadOnly: true, History: max(opts.History, 0)}}
}

// Event is the JSON published on the room's topic. Type is "message", "join", "leave" or "members".
type Event struct {
	Type    string   `json:"type"`
	ID      string   `json:"id,omitempty"`   // message id (type message)
	From    string   `json:"from,omitempty"` // sender's session id
	Name    string   `json:"name,omitempty"` // sender's display name
	Text    string   `json:"text,omitempty"`
	Time    string   `json:"time,omitempty"` // RFC 3339 with milliseconds, UTC
	Members []Member `json:"members,omitempty"`
}

// Member is one person in the room.
type Member struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Room is a running chat room; New starts it and Close stops it. Safe for concurrent use.
type Room struct {
	b           *broker.Broker
	opts        Options
	stopObserve func()

	mu      sync.Mutex
	members map[string]*member // by session id
}

type member struct {
	name string
	subs int // a session may subscribe more than once; it leaves with its last subscription
}

// New starts a room on b: it handles SENDs to opts.App and watches subscriptions to opts.Topic.
func New(b *broker.Broker, opts Options) *Room {
	r := &Room{b: b, opts: opts.withDefaults(), members: make(map[string]*member)}
	b.HandleApp(r.opts.App, r.handleSend)
	r.stopObserve = b.Observe(r.opts.Topic, r.observe)
	return r
}

// Close stops handling SENDs and presence.
func (r *Room) Close() {
	r.b.HandleApp(r.opts.App, nil)
	r.stopObserve()
}

// Members returns the current members sorted by name, then id.
func (r *Room) Members() []Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.membersLocked()
}

func (r *Room) membersLocked() []Member {
	out := r.localMembersLocked()
	if r.opts.Peers != nil {
		out = append(out, r.opts.Peers.Members()...)
	}
	sortMembers(out)
	return out
}

// localMembersLocked returns this node's members, unsorted. The caller holds r.mu.
func (r *Room) localMembersLocked() []Member {
	out := make([]Member, 0, len(r.members))
	for id, m := range r.members {
		out = append(out, Member{ID: id, Name: m.name})
	}
	return out
}

// sortMembers sorts by name, then id.
func sortMembers(out []Member) {
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
}

// handleSend validates and publishes one client's message. Runs on the sender's goroutine.
func (r *Room) handleSend(m *broker.Message) error {
	text, err := r.messageText(m.Body)
	if err != nil {
		return err
	}
	return r.publish(Event{Type: "message", ID: uuid.NewString(), From: m.Sender.Session, Name: m.Sender.Name, Text: text})
}

// messageText extracts the text from a plain body or a JSON {"text": ...} object, strips control
// characters (tabs and line breaks become spaces), and enforces the bounds.
func (r *Room) messageText(body []byte) (string, error) {
	raw := string(body)
	if trimmed := strings.TrimSpace(raw); strings.HasPrefix(trimmed, "{") {
		var in struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal([]byte(trimmed), &in); err != nil || in.Text == nil {
			return "", fmt.Errorf("%w: a JSON body needs a \"text\" string", ErrInvalidMessage)
		}
		raw = *in.Text
	}
	if !utf8.ValidString(raw) {
		return "", fmt.Errorf("%w: text is not valid UTF-8", ErrInvalidMessage)
	}
	text := strings.TrimSpace(strings.Map(func(c rune) rune {
		switch {
		case c == '\t' || c == '\n' || c == '\r':
			return ' '
		case unicode.IsControl(c):
			return -1
		}
		return c
	}, raw))
	if text == "" {
		return "", fmt.Errorf("%w: text is empty", ErrInvalidMessage)
	}
	if n := utf8.RuneCountInString(text); n > r.opts.MaxLength {
		return "", fmt.Errorf("%w: text is %d characters, the limit is %d", ErrInvalidMessage, n, r.opts.MaxLength)
	}
	return text, nil
}

// observe turns subscriptions to the room's topic into presence: the first subscription of a session
// is a join (announced to everyone) and gets the member list; its last one leaving is a leave.
func (r *Room) observe(ev broker.SubscriptionEvent) {
	owner := ev.Subscription.Owner()
	if owner.IsServer() {
		return
	}
	r.mu.Lock()
	m := r.members[owner.Session]
	var announce string
	switch {
	case ev.Subscribed && m == nil:
		r.members[owner.Session] = &member{name: owner.Name, subs: 1}
		announce = "join"
	case ev.Subscribed:
		m.subs++
	case m != nil:
		if m.subs--; m.subs == 0 {
			delete(r.members, owner.Session)
			announce = "leave"
		}
	}
	members := r.membersLocked()
	var local []Member
	if announce != "" && r.opts.Peers != nil {
		local = r.localMembersLocked()
		sortMembers(local)
	}
	r.mu.Unlock()

	if announce != "" {
		if r.opts.Peers != nil {
			r.opts.Peers.Share(local)
		}
		_ = r.publish(Event{Type: announce, From: owner.Session, Name: owner.Name})
	}
	if ev.Subscribed {
		body, _ := json.Marshal(Event{Type: "members", Members: members})
		_ = r.b.DeliverTo(ev.Subscription, &broker.Message{Destination: r.opts.Topic, Header: jsonHeader, Body: body})
	}
}

var jsonHeader = []broker.Header{{Name: "content-type", Value: "application/json"}}

// PeersGone tells the room that another node went away with these members: each leaves, announced
// to this node's subscribers only (every node's room announces it to its own).
func (r *Room) PeersGone(members []Member) {
	for _, m := range members {
		ev := Event{Type: "leave", From: m.ID, Name: m.Name, Time: r.opts.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")}
		body, err := json.Marshal(ev)
		if err != nil {
			continue
		}
		_ = r.b.PublishRemote(&broker.Message{Destination: r.opts.Topic, Header: jsonHeader, Body: body})
	}
}

// publish stamps ev with the time and publishes it as the server, the only sender the read-only topic
// accepts.
func (r *Room) publish(ev Event) error {
	ev.Time = r.opts.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return r.b.Publish(&broker.Message{Destination: r.opts.Topic, Header: jsonHeader, Body: body})
}
