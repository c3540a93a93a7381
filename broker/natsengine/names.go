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
	name := strings.TrimPrefix(dest, queueDestPrefix)
	var b strings.Builder
	b.Grow(len(queueSubjectPrefix) + len(name))
	b.WriteString(queueSubjectPrefix)
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
	if len(name) == 0 {
		b.WriteString("%")
	}
	return b.String()
}

// queueConsumer is the durable consumer name of a /queue/ destination.
func queueConsumer(dest string) string {
	sum := sha256.Sum256([]byte(strings.TrimPrefix(dest, queueDestPrefix)))
	return "q-" + hex.EncodeToString(sum[:16])
}
