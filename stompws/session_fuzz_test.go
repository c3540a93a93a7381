package stompws

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/stompd/stompd/broker"
	"github.com/stompd/stompd/stompws/auth"
	"github.com/stompd/stompd/stompws/frame"
)

// FuzzSession feeds random byte streams — mutated sequences of STOMP frames — to a whole session on a
// real in-process broker. Whatever the input: no panic; the session ends promptly once the input is
// exhausted; everything the server wrote parses as STOMP frames; an ERROR, if any, is the last frame
// written; and the session leaves no subscription or unacknowledged message behind in the broker.
// When the high bit of chunk is set, authentication and authorization are on (user u, passcode p, role
// ops; a users file and an HS256 key), so CONNECT credentials and denied frames are fuzzed too. When
// the next bit is set, the connection has a small outbound queue that refuses what does not fit, as a
// client that reads slowly makes it, so slow consumers, deliveries waiting for room and the conflate
// (/topic/c.#) and drop-oldest (/topic/d.#) policies are fuzzed as well; the low six bits are the
// read chunk size.
//
// go test -run x -fuzz FuzzSession -fuzztime 60s ./stompws
func FuzzSession(f *testing.F) {
	seeds := []string{
		"CONNECT\naccept-version:1.2\nhost:/\n\n\x00SUBSCRIBE\nid:0\ndestination:/queue/a\nack:client-individual\n\n\x00SEND\ndestination:/queue/a\nreceipt:1\n\nhello\x00",
		"STOMP\naccept-version:1.1\nheart-beat:0,0\n\n\x00SUBSCRIBE\nid:s\ndestination:/topic/a.*\n\n\x00SEND\ndestination:/topic/a.b\nx-h:a\\cb\n\nbody\x00UNSUBSCRIBE\nid:s\n\n\x00DISCONNECT\nreceipt:bye\n\n\x00",
		"CONNECT\n\n\x00SUBSCRIBE\ndestination:/queue/b\nack:client\n\n\x00SEND\ndestination:/queue/b\n\n1\x00SEND\ndestination:/queue/b\n\n2\x00ACK\nmessage-id:x\n\n\x00",
		"CONNECT\naccept-version:1.2\n\n\x00BEGIN\ntransaction:t\n\n\x00SEND\ndestination:/topic/x\ntransaction:t\n\nq\x00COMMIT\ntransaction:t\n\n\x00ABORT\ntransaction:t\n\n\x00",
		"CONNECT\naccept-version:1.2\n\n\x00SEND\ndestination:/queue/c\nreply-to:/temp-queue/r\n\nask\x00SUBSCRIBE\nid:1\ndestination:/queue/c\nack:client\n\n\x00NACK\nid:1-1\n\n\x00",
		"CONNECT\naccept-version:1.2\n\n\x00SEND\ndestination:/topic/y\ncontent-length:3\n\na\x00b\x00\n\n\nSEND\ndestination:/nowhere\n\n\x00",
		"SEND\ndestination:/queue/a\n\nbefore connect\x00",
		"CONNECT\naccept-version:1.2\n\n\x00SEND\ndestination:/app/none\n\nx\x00",
	}
	authSeeds := []string{
		"CONNECT\naccept-version:1.2\nlogin:u\npasscode:p\n\n\x00SUBSCRIBE\nid:0\ndestination:/queue/a\nack:client\n\n\x00SEND\ndestination:/queue/a\nuser-id:x\n\nhi\x00SEND\ndestination:/topic/stocks\n\nno\x00",
		"CONNECT\naccept-version:1.2\nlogin:u\npasscode:wrong\n\n\x00",
		"CONNECT\naccept-version:1.2\nAuthorization:Bearer " + fuzzToken + "\n\n\x00SUBSCRIBE\nid:0\ndestination:/topic/#\n\n\x00",
		"CONNECT\naccept-version:1.1\npasscode:" + fuzzToken + "\n\n\x00SEND\ndestination:/temp-queue/r\n\nx\x00",
	}
	boundedSeeds := []string{
		"CONNECT\naccept-version:1.2\n\n\x00SUBSCRIBE\nid:c\ndestination:/topic/c.#\n\n\x00SUBSCRIBE\nid:d\ndestination:/topic/d.#\n\n\x00" +
			strings.Repeat("SEND\ndestination:/topic/c.x\n\n"+strings.Repeat("c", 100)+"\x00SEND\ndestination:/topic/c.y\n\ny\x00SEND\ndestination:/topic/d.z\n\n"+strings.Repeat("d", 100)+"\x00", 8) +
			"SEND\ndestination:/topic/c.x\nreceipt:r\n\nlast\x00",
		"CONNECT\naccept-version:1.2\n\n\x00SUBSCRIBE\nid:t\ndestination:/topic/t\n\n\x00" +
			strings.Repeat("SEND\ndestination:/topic/t\nreceipt:r\n\n"+strings.Repeat("t", 200)+"\x00", 8),
		"CONNECT\naccept-version:1.2\n\n\x00SUBSCRIBE\nid:q\ndestination:/queue/q\nack:client\n\n\x00" +
			strings.Repeat("SEND\ndestination:/queue/q\nreceipt:r\n\n"+strings.Repeat("q", 150)+"\x00", 8),
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(7))
		f.Add([]byte(s), uint8(0x40))
	}
	for _, s := range boundedSeeds {
		f.Add([]byte(s), uint8(0x40))
		f.Add([]byte(s), uint8(0x40|13))
	}
	for _, s := range authSeeds {
		f.Add([]byte(s), uint8(0x80))
		f.Add([]byte(s), uint8(0x85))
	}
	authn, policy := fuzzAuth(f)
	f.Fuzz(func(t *testing.T, input []byte, chunk uint8) {
		br := broker.New(broker.Options{MaxQueueDepth: 50, Policies: []broker.DestinationPolicy{
			{Pattern: "/topic/c.#", SlowConsumer: broker.PolicyConflate, MaxPending: 2},
			{Pattern: "/topic/d.#", SlowConsumer: broker.PolicyDropOldest, MaxPending: 2},
		}})
		opts := Options{
			NoHeartBeatSend: true, NoHeartBeatReceive: true,
			Limits:           frame.Limits{MaxFrameBytes: 64 << 10, MaxHeaders: 32, MaxHeaderBytes: 1 << 10},
			MaxSubscriptions: 8, MaxTransactions: 4, MaxTxFrames: 16,
		}
		if chunk&0x80 != 0 {
			opts.Authenticator, opts.Policy, opts.AuthFailureDelay = authn, policy, -1
		}
		c := newMemConn(string(input))
		if chunk&0x40 != 0 {
			const outboundBytes = 512 // a few small frames
			opts.MaxQueuedBytes = outboundBytes
			c = newBoundedMemConn(string(input), outboundBytes)
		}
		srv := NewServer(br, opts)
		c.chunk, c.eof, c.capture = int(chunk&0x3f), true, true
		done := make(chan struct{})
		go func() {
			_ = srv.ServeConn(context.Background(), c)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("session did not end within 10s of its input ending")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}

		var frames []string
		p := frame.NewParser(frame.Limits{MaxFrameBytes: 16 << 20, MaxHeaders: 10000, MaxHeaderBytes: 1 << 20})
		out := c.output()
		err := p.Feed(out, func(fr *frame.Frame) error {
			if fr != nil {
				frames = append(frames, fr.Command)
				if fr.Command == frame.CONNECTED {
					p.SetVersion(frame.V10) // CONNECTED's version decides the rest; V10 unescapes nothing
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("server output does not parse: %v\n%q", err, out)
		}
		if p.Buffered() != 0 {
			t.Fatalf("server output ends in a partial frame: %q", out)
		}
		for i, cmd := range frames {
			if cmd == frame.ERROR && i != len(frames)-1 {
				t.Fatalf("frames after an ERROR: %v", frames)
			}
		}
		if s := br.Stats(); s.Subscriptions != 0 || s.UnackedMessages != 0 {
			t.Fatalf("session left %d subscriptions and %d unacked messages", s.Subscriptions, s.UnackedMessages)
		}
		if bytes.Contains(out, []byte("internal error")) {
			t.Fatalf("an input reached the internal error path: %q", out)
		}
	})
}

// fuzzSecret signs fuzzToken, a token for user u with role ops that never expires.
var (
	fuzzSecret = []byte("0123456789abcdef0123456789abcdef")
	fuzzToken  = func() string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u", "roles": []string{"ops"}}).SignedString(fuzzSecret)
		if err != nil {
			panic(err)
		}
		return tok
	}()
)

// fuzzAuth makes FuzzSession's authenticator (a users file holding u:p with role ops, and fuzzSecret)
// and a policy that grants ops the queues and everyone the default rules.
func fuzzAuth(f *testing.F) (*auth.Authenticator, *auth.Policy) {
	hash, err := bcrypt.GenerateFromPassword([]byte("p"), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	users := filepath.Join(f.TempDir(), "users")
	if err := os.WriteFile(users, []byte("u:"+string(hash)+":ops\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	authn, err := auth.New(auth.Config{UsersFile: users, JWT: auth.JWTConfig{Secret: fuzzSecret}})
	if err != nil {
		f.Fatal(err)
	}
	policy, err := auth.NewPolicy(append(auth.DefaultRules(), auth.Rule{Roles: []string{"ops"}, Publish: []string{"/queue/#"}, Subscribe: []string{"/queue/#"}}))
	if err != nil {
		f.Fatal(err)
	}
	return authn, policy
}
