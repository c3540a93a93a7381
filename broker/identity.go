package broker

import "sync/atomic"

// Identity names who published a message or owns a subscription. The zero
// Identity is the server itself: messages from in-process publishers carry
// it, and only it passes a ReadOnly destination policy. A protocol layer
// fills Session for everything its clients do, so a client can never pass
// for the server. Identity is a plain value, safe to copy and share.
type Identity struct {
	Session string // server-assigned session id; "" for the server
	Name    string // display name
	User    string // authenticated user; "" when authentication is off

	// Quota bounds the destinations this identity's publishes, subscriptions
	// and reply queue declarations create; nil: no bound beyond
	// Options.MaxDestinations. A protocol layer gives each session its own.
	Quota *DestinationQuota
}

// DestinationQuota bounds how many destinations one creator may create: each
// queue, reply queue or retaining topic made by a publish, subscribe or
// declaration of an Identity holding the quota counts once, for as long as
// the quota lives (deleting the destination gives nothing back). Safe for
// concurrent use.
type DestinationQuota struct {
	limit   int64
	created atomic.Int64
}

// NewDestinationQuota returns a quota of limit destinations; limit ≤ 0
// returns nil, which is no bound.
func NewDestinationQuota(limit int) *DestinationQuota {
	if limit <= 0 {
		return nil
	}
	return &DestinationQuota{limit: int64(limit)}
}

// Created reports how many destinations have been counted against q.
func (q *DestinationQuota) Created() int {
	if q == nil {
		return 0
	}
	return int(q.created.Load())
}

// take counts one creation, or reports false and counts nothing when the
// quota is used up. A nil quota always has room.
func (q *DestinationQuota) take() bool {
	if q == nil {
		return true
	}
	if q.created.Add(1) > q.limit {
		q.created.Add(-1)
		return false
	}
	return true
}

// giveBack undoes a take whose creation did not happen.
func (q *DestinationQuota) giveBack() {
	if q != nil {
		q.created.Add(-1)
	}
}

// IsServer reports whether id is the server, that is, has no session.
func (id Identity) IsServer() bool { return id.Session == "" }
