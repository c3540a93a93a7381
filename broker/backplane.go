package broker

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Backplane carries topic messages between the nodes of a cluster (Options.Backplane): a message
// published on one node reaches the matching subscribers of every node. The broker hands it every
// topic message published here and tells it which topics and patterns have subscribers here; the
// backplane hands the messages of other nodes back through PublishRemote. It never forwards those
// again, so a message crosses the backplane once.
type Backplane interface {
	// Forward hands a topic message published on this node to the other nodes. It is called after
	// the local delivery, with no broker lock held, in each publisher's order, and must not block.
	Forward(m *Message)
	// Watch says this node has a subscriber for dest, a topic or topic pattern: the messages other
	// nodes publish that it matches are to be delivered here. It returns once that holds for messages
	// published after it returns, or an error if it cannot tell (the subscription still works
	// locally, and the backplane keeps trying). Unwatch undoes one Watch of dest. They are called
	// without broker locks held.
	Watch(dest string) error
	Unwatch(dest string)
	// ForwardReply hands m, published here to a reply queue of the node whose NodeID is node, to that
	// node, which delivers it with PublishRemote. It must not block; a reply whose node is gone is
	// lost, as the reply queue went with its session.
	ForwardReply(node string, m *Message)
}

// PublishRemote delivers m, a topic message or a reply published on another node and carried by the
// backplane, to the subscribers of this node: as Publish does, but m keeps its ID and publish time
// and is not forwarded again.
func (b *Broker) PublishRemote(m *Message) error {
	kind, err := ParseDestination(m.Destination)
	if err != nil {
		return err
	}
	m.Kind, m.remote = kind, true // m.Offset is the stream offset its node gave it, if any
	switch kind {
	case KindTopic:
		_, err := b.publishTopic(m, nil, false)
		return err
	case KindReplyQueue:
		return b.publishQueue(m, kind, nil)
	}
	return errNotTopic(m.Destination)
}

// NewReplyQueueName returns a new, unguessable reply queue destination of this node,
// /reply-queue/NODEID-RANDOM, which DeclareReplyQueue creates; in a cluster, a reply published to it
// on another node is carried here.
func (b *Broker) NewReplyQueueName() string {
	var r [16]byte
	_, _ = rand.Read(r[:])
	return replyQueuePrefix + b.opts.NodeID + "-" + hex.EncodeToString(r[:])
}

// replyNode returns the NodeID of the node a reply queue destination belongs to, "" if it names
// none.
func replyNode(dest string) string {
	name := strings.TrimPrefix(dest, replyQueuePrefix)
	node, _, ok := strings.Cut(name, "-")
	if !ok {
		return ""
	}
	return node
}

// forwardReply hands a reply for a reply queue this node does not have to the node it belongs to, and
// reports whether it did.
func (b *Broker) forwardReply(m *Message) bool {
	bp := b.opts.Backplane
	if bp == nil || m.remote {
		return false
	}
	node := replyNode(m.Destination)
	if node == "" || node == b.opts.NodeID {
		return false
	}
	b.stamp(m)
	bp.ForwardReply(node, m)
	return true
}

// forward hands a topic message published here to the backplane, if there is one.
func (b *Broker) forward(m *Message) {
	if bp := b.opts.Backplane; bp != nil && !m.remote {
		bp.Forward(m)
	}
}

// watch and unwatch tell the backplane, if there is one, about a topic subscription of this node.
func (b *Broker) watch(dest string) {
	if bp := b.opts.Backplane; bp != nil {
		if err := bp.Watch(dest); err != nil {
			b.log.Warn("the cluster does not yet deliver other nodes' messages for a subscription", "destination", dest, "error", err)
		}
	}
}

func (b *Broker) unwatch(dest string) {
	if bp := b.opts.Backplane; bp != nil {
		bp.Unwatch(dest)
	}
}

// WatchRetaining watches, for good, every topic pattern whose policy retains messages, so that this
// node retains what every node publishes there (a new subscriber here gets the cluster's last value
// or history, not only this node's) whether or not it has subscribers for them. A no-op without a
// backplane.
func (b *Broker) WatchRetaining() {
	if b.opts.Backplane == nil {
		return
	}
	for _, p := range b.opts.Policies {
		if !(p.LastValue || p.History > 0) {
			continue
		}
		pattern := p.Pattern
		if !strings.HasPrefix(pattern, topicPrefix) {
			if strings.HasPrefix(pattern, "/") {
				continue // another kind of destination
			}
			pattern = topicPrefix + "#" // a pattern of wildcards alone covers every topic
		}
		b.watch(pattern)
	}
}
