package stompws

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/stompd/stompd/metrics"
	"github.com/stompd/stompd/stompws/frame"
)

// supportedVersions is announced in the version header of an ERROR for a failed negotiation.
const supportedVersions = "1.0,1.1,1.2"

// handleConnect negotiates the version and heart-beats and answers CONNECTED.
func (s *session) handleConnect(f *frame.Frame) error {
	v, ok := negotiateVersion(f)
	if !ok {
		accept, _ := f.Get("accept-version")
		return protoErr("unsupported protocol version", "client accepts %q, server supports %s", accept, supportedVersions)
	}
	var cx, cy time.Duration
	if hb, ok := f.Get("heart-beat"); ok && v > frame.V10 {
		var err error
		if cx, cy, err = parseHeartBeat(hb); err != nil {
			return protoErr("invalid heart-beat header", "%q: %v", hb, err)
		}
	}
	if len(f.Body) > 0 {
		return protoErr("frame must not have a body", "%s with a %d-byte body", f.Command, len(f.Body))
	}
	s.errVersion.Store(uint32(v)) // the ERROR for refused credentials speaks the client's version
	if pe := s.authenticateConnect(f); pe != nil {
		return pe
	}
	s.connectArrived()
	s.version = v
	s.connected = true
	s.name = displayName(f, s.id)
	if s.authenticated {
		s.name = s.principal.User // a user cannot pose as another in the chat
	}
	s.parser.SetVersion(v)
	s.hbOut, s.hbIn = negotiateHeartBeats(s.opts, cx, cy)

	// CONNECT and CONNECTED are never escaped, whatever the version.
	b := frame.AppendCommand(nil, frame.CONNECTED)
	b = frame.AppendHeader(b, frame.V10, "version", v.String())
	b = frame.AppendHeader(b, frame.V10, "heart-beat", formatHeartBeat(s.hbOut, s.hbIn))
	b = frame.AppendHeader(b, frame.V10, "server", s.opts.ServerName)
	b = frame.AppendHeader(b, frame.V10, "session", s.id)
	b = frame.AppendBody(b, nil)
	s.enqueueControl(b, metrics.CommandConnected)
	s.startTimers()
	s.startExpiryTimer()
	s.publishView()
	return nil
}

// maxDisplayName bounds a client-chosen display name, in characters.
const maxDisplayName = 64

// displayName picks the name others see for this client: CONNECT's name header, else its login, else
// the first 8 characters of the session id. Control characters are dropped and the length bounded.
func displayName(f *frame.Frame, sessionID string) string {
	for _, header := range []string{"name", "login"} {
		v, ok := f.Get(header)
		if !ok {
			continue
		}
		name := strings.TrimSpace(strings.Map(func(c rune) rune {
			if unicode.IsControl(c) {
				return -1
			}
			return c
		}, string(bytes.ToValidUTF8(v, []byte("\uFFFD")))))
		if r := []rune(name); len(r) > maxDisplayName {
			name = string(r[:maxDisplayName])
		}
		if name != "" {
			return name
		}
	}
	return sessionID[:8]
}

// negotiateVersion picks the highest version both sides support. A CONNECT without accept-version is
// STOMP 1.0.
func negotiateVersion(f *frame.Frame) (frame.Version, bool) {
	accept, ok := f.Get("accept-version")
	if !ok {
		return frame.V10, true
	}
	best := frame.Version(0)
	for _, item := range bytes.Split(accept, []byte(",")) {
		if v, ok := frame.ParseVersion(string(bytes.TrimSpace(item))); ok && v > best {
			best = v
		}
	}
	return best, best != 0
}

// parseHeartBeat parses a heart-beat header value "cx,cy" (milliseconds).
func parseHeartBeat(hb []byte) (cx, cy time.Duration, err error) {
	i := bytes.IndexByte(hb, ',')
	if i < 0 {
		return 0, 0, strconv.ErrSyntax
	}
	x, err := strconv.ParseUint(string(bytes.TrimSpace(hb[:i])), 10, 31)
	if err != nil {
		return 0, 0, err
	}
	y, err := strconv.ParseUint(string(bytes.TrimSpace(hb[i+1:])), 10, 31)
	if err != nil {
		return 0, 0, err
	}
	return time.Duration(x) * time.Millisecond, time.Duration(y) * time.Millisecond, nil
}

// formatHeartBeat renders the CONNECTED heart-beat header: what the server will send, and what it
// expects to receive, so that the client's own max(…) computation lands on the same intervals.
func formatHeartBeat(out, in time.Duration) string {
	return strconv.FormatInt(out.Milliseconds(), 10) + "," + strconv.FormatInt(in.Milliseconds(), 10)
}

// negotiateHeartBeats follows the client, as RabbitMQ does: the server sends at the interval the
// client wants to receive (cy) and expects beats at the interval the client promises to send (cx),
// never more often than HeartBeatMin, and sends at least every HeartBeatMax. STOMP's rule (each
// direction beats at the larger of the sender's and the receiver's values, not at all if either is 0)
// then gives the same intervals on both sides, since CONNECTED reports exactly these. Inbound is not
// capped above: a client that promised slower beats than HeartBeatMax is held to its promise.
func negotiateHeartBeats(o *Options, cx, cy time.Duration) (out, in time.Duration) {
	if cy > 0 && !o.NoHeartBeatSend {
		out = min(max(cy, o.HeartBeatMin), o.HeartBeatMax)
	}
	if cx > 0 && !o.NoHeartBeatReceive {
		in = max(cx, o.HeartBeatMin)
	}
	return out, in
}
