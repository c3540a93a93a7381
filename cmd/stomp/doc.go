// Command stomp is a command-line STOMP client for stompd and any other STOMP 1.0–1.2 broker, over
// TCP or WebSocket, with or without TLS.
//
//	stomp sub [flags] DEST...        print messages as they arrive
//	stomp pub [flags] DEST BODY|-    send a message (or many: -lines, -count)
//
// Run stomp -h, or stomp CMD -h, for the flags. Connection flags fall back to the environment
// variables STOMP_URL, STOMP_LOGIN and STOMP_PASSCODE, so that a passcode need not appear on a
// command line where other users can read it.
//
// # Exit codes
//
// Scripts can rely on these:
//
//	0  success (sub: -count reached, or interrupted)
//	1  runtime or broker error; the reason is on stderr, with an ERROR frame's message header
//	2  usage error: bad flag, missing argument, malformed URL or header
//	3  timeout: sub -timeout passed with no message, -connect-timeout, or a receipt that never came
//
// # Transports
//
// URLs are tcp://HOST[:PORT] (default port 61613), tcps:// or ssl:// (TLS, default port 61614),
// ws://HOST[:PORT]/PATH and wss://HOST[:PORT]/PATH (WebSocket with the v10.stomp, v11.stomp and
// v12.stomp subprotocols). The STOMP client is github.com/go-stomp/stomp/v3; over WebSocket it reads
// a byte stream assembled from WebSocket messages of either type, so frames a broker sends as binary
// messages (stompd does so for bodies that are not UTF-8) arrive intact, and frames split across
// messages or several frames in one message are handled. Outgoing frames go as text messages when
// they are valid UTF-8 and as binary messages otherwise, since a text message must be UTF-8.
//
// # Guarantees
//
// pub returns 0 only after the broker has acknowledged the last message: it asks for a RECEIPT on it
// (on every message with -receipt) and ends with a DISCONNECT that also asks for one, which a broker
// answers only after it has handled every earlier frame. An ERROR frame at any point makes the command
// exit 1 with the frame's message. sub acknowledges a message (-ack client or client-individual) only
// after writing it to stdout, so messages it did not print return to their queue.
package main
