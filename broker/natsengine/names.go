package natsengine

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

const (
	queueStream        = "QUEUES"
	queueSubjectPrefix = "q."
	queueDestPrefix    = "/queue/"
)

// queueSubject is the subject of a /queue/ destination (see the package doc).
func queueSubject(dest string) string {
	return queueSubjectPrefix + escapeToken(strings.TrimPrefix(dest, queueDestPrefix))
}

// escapeToken writes name as one subject token: every byte outside [A-Za-z0-9_-] as %XX, and an empty
// name as "%".
func escapeToken(name string) string {
	if name == "" {
		return "%"
	}
	var b strings.Builder
	b.Grow(len(name))
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// queueConsumer is the durable consumer name of a /queue/ destination.
func queueConsumer(dest string) string {
	sum := sha256.Sum256([]byte(strings.TrimPrefix(dest, queueDestPrefix)))
	return "q-" + hex.EncodeToString(sum[:16])
}
