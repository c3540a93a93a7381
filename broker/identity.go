package broker

// Identity names who published a message or owns a subscription. The zero
// Identity is the server itself: messages from in-process publishers carry
// it, and only it passes a ReadOnly destination policy. A protocol layer
// fills Session for everything its clients do, so a client can never pass
// for the server. Identity is a plain value, safe to copy and share.
type Identity struct {
	Session string // server-assigned session id; "" for the server
	Name    string // display name
	User    string // authenticated user; "" when authentication is off
}

// IsServer reports whether id is the server, that is, has no session.
func (id Identity) IsServer() bool { return id.Session == "" }
