package natsengine

import (
	"strings"
)

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
