package natsengine

import (
	"fmt"
	"strings"

	"github.com/stompd/stompd/broker"
)

// maxSubjectBytes bounds, in bytes, the NATS subjects the engine publishes on and subscribes to. A
// NATS server answers a protocol line (PUB, SUB) longer than its max_control_line (4 KiB by default)
// by closing the connection, and nats.go then closes it for good rather than reconnect; a destination
// name can be far longer (a STOMP header line may take 100 KiB) and escaping (escapeToken) can triple
// its bytes. A destination whose subject would pass the bound is refused (Cluster.Watch,
// OpenQueue, OpenStream, with an error wrapping ErrNameTooLong) or not forwarded (Cluster.Forward
// counts it in ClusterStats.FailedOut: it reached this node's subscribers only); the rest of the line
// (reply inbox, sizes) fits in what the bound leaves.
const maxSubjectBytes = 1024

// ErrNameTooLong means a destination's name, escaped as a NATS subject, would take more than
// maxSubjectBytes: the cluster and the store refuse it. It is a broker.ErrInvalidDestination, so a
// client gets ERROR invalid destination (not a store failure to retry).
var ErrNameTooLong = fmt.Errorf("%w: name too long for NATS", broker.ErrInvalidDestination)

// checkSubject returns nil if subject fits maxSubjectBytes, else an error wrapping ErrNameTooLong
// that says by how much (not the name itself, which may be huge).
func checkSubject(subject string) error {
	if len(subject) <= maxSubjectBytes {
		return nil
	}
	return fmt.Errorf("%w: escaped, it takes %d bytes, more than the %d allowed", ErrNameTooLong, len(subject), maxSubjectBytes)
}

// Topic messages cross the cluster on core NATS subjects: /topic/W1.W2... is published on
// t.E(W1).E(W2)..., each word escaped by escapeToken, so that any destination the broker accepts is
// a valid subject and two destinations never share one.
const (
	topicSubjectPrefix = "t."
	topicAllSubjects   = "t.>"
)

// topicSubject is the subject a message to the topic destination dest is published on.
func topicSubject(dest string) string {
	words := strings.Split(strings.TrimPrefix(dest, topicDestPrefix), ".")
	var b strings.Builder
	b.Grow(len(topicSubjectPrefix) + len(dest))
	b.WriteString(topicSubjectPrefix)
	for i, w := range words {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(escapeToken(w))
	}
	return b.String()
}

// watchSubjects are the subjects a node subscribes to for the topic or topic pattern dest. RabbitMQ's
// '*' is NATS's '*'. Its '#' matches zero or more words, NATS's '>' one or more and only last: a
// pattern ending in '#' needs the words before it alone and followed by '>', and '#' alone is every
// topic. A '#' before the last word has no NATS form: the node subscribes to everything under the
// words before it, and its broker delivers only what the pattern matches. Subjects may overlap, so a
// message can arrive more than once; the receiver drops the repeats.
func watchSubjects(dest string) []string {
	words := strings.Split(strings.TrimPrefix(dest, topicDestPrefix), ".")
	var prefix []string
	for _, w := range words {
		if w == "#" {
			if len(prefix) == 0 {
				return []string{topicAllSubjects}
			}
			p := topicSubjectPrefix + strings.Join(prefix, ".")
			return []string{p, p + ".>"}
		}
		if w == "*" {
			prefix = append(prefix, "*")
		} else {
			prefix = append(prefix, escapeToken(w))
		}
	}
	return []string{topicSubjectPrefix + strings.Join(prefix, ".")}
}
