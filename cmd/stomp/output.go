package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// outputFormat is how sub prints a message.
type outputFormat int

const (
	formatBody    outputFormat = iota // the body, one message per line
	formatHeaders                     // header lines, a blank line, the body
	formatJSON                        // one JSON object per line
)

// jsonMessage is the -json shape of a message. Headers keeps the first value of a repeated header,
// as STOMP does. Body holds a body that is valid UTF-8; any other goes, base64-encoded, in BodyBase64.
type jsonMessage struct {
	Destination  string            `json:"destination"`
	Subscription string            `json:"subscription"`
	MessageID    string            `json:"message_id"`
	Headers      map[string]string `json:"headers"`
	Body         *string           `json:"body,omitempty"`
	BodyBase64   *string           `json:"body_base64,omitempty"`
}

// messagePrinter writes messages to w in one format, reusing its buffer between messages. Not safe
// for concurrent use.
type messagePrinter struct {
	w      io.Writer
	format outputFormat
	buf    bytes.Buffer
}

// print writes m as one write, so that messages are never interleaved in a pipe.
func (p *messagePrinter) print(m *stomp.Message) error {
	p.buf.Reset()
	switch p.format {
	case formatJSON:
		if err := appendJSON(&p.buf, m); err != nil {
			return err
		}
	case formatHeaders:
		for i := 0; i < m.Header.Len(); i++ {
			k, v := m.Header.GetAt(i)
			fmt.Fprintf(&p.buf, "%s:%s\n", k, v)
		}
		p.buf.WriteByte('\n')
		appendBodyLine(&p.buf, m.Body)
		// A blank line after the body separates one message from the next header block.
		p.buf.WriteByte('\n')
	default:
		appendBodyLine(&p.buf, m.Body)
	}
	_, err := p.w.Write(p.buf.Bytes())
	return err
}

// appendBodyLine appends body, ending it with a newline when it has none.
func appendBodyLine(buf *bytes.Buffer, body []byte) {
	buf.Write(body)
	if len(body) == 0 || body[len(body)-1] != '\n' {
		buf.WriteByte('\n')
	}
}

func appendJSON(buf *bytes.Buffer, m *stomp.Message) error {
	jm := jsonMessage{
		Destination:  m.Header.Get(frame.Destination),
		Subscription: m.Header.Get(frame.Subscription),
		MessageID:    m.Header.Get(frame.MessageId),
		Headers:      make(map[string]string, m.Header.Len()),
	}
	for i := 0; i < m.Header.Len(); i++ {
		k, v := m.Header.GetAt(i)
		if _, seen := jm.Headers[k]; !seen {
			jm.Headers[k] = v
		}
	}
	if utf8.Valid(m.Body) {
		s := string(m.Body)
		jm.Body = &s
	} else {
		s := base64.StdEncoding.EncodeToString(m.Body)
		jm.BodyBase64 = &s
	}
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	return enc.Encode(&jm) // Encode ends the object with the newline that separates messages
}
