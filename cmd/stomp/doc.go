// Command stomp is a command-line STOMP client for stompd and any other STOMP 1.0–1.2 broker, over
// TCP or WebSocket, with or without TLS.
//
//	stomp sub [flags] DEST...        print messages as they arrive
//	stomp pub [flags] DEST BODY|-    send a message (or many: -lines, -count)
//	stomp bench SCENARIO [flags]     load a broker and measure it
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
//	1  runtime or broker error; the reason is on stderr, with an ERROR frame's message header;
//	   bench: a message lost or duplicated (or, on a topic, out of order)
//	2  usage error: bad flag, missing argument, malformed URL or header
//	3  timeout: sub -timeout passed with no message, -connect-timeout, a receipt that never came,
//	   or bench -timeout
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
// answers only after it has handled every earlier frame. A broker may answer DISCONNECT by closing
// the connection normally instead (RabbitMQ's Web-STOMP closes the WebSocket with status 1000 and
// sends no RECEIPT): pub and sub take a normal close (WebSocket status 1000, or a TCP orderly close,
// between frames) that comes while they wait for that RECEIPT as the answer, since the broker handled
// the earlier frames first. Any other close, going-away (1001) included, is an error. An ERROR frame
// at any point makes the command exit 1 with the frame's message. sub acknowledges a message (-ack
// client or client-individual) only after writing it to stdout, so messages it did not print return
// to their queue.
//
// # Load tool
//
// bench runs one of six scenarios (fanout, fanin, pairs, queue, latency, idle) against any STOMP
// broker, over the same transports, and reports one summary or, with -json, one JSON object. It
// speaks STOMP through github.com/stompd/stompd/stompws/frame rather than go-stomp: one goroutine
// reads each connection, a receiver allocates nothing per message, and a publisher writes many SEND
// frames at once (one WebSocket text message per write), so that the tool leaves the machine's
// cores to the broker it measures. Over ws:// the WebSocket library makes the opening handshake and
// bench frames and unframes messages on the socket itself (wss:// goes through the library): per
// message, the library's reader cost a receiver more CPU than a whole delivery over TCP, which showed
// as latency on WebSocket that the broker did not cause.
//
// Every subscription is in place before the first message is sent. Not every broker answers a
// SUBSCRIBE's receipt (go-stomp's server does not), so each SUBSCRIBE is followed by a transaction
// begun and at once aborted, the ABORT asking for a receipt, which every broker answers after the
// frames before it. go-stomp's server also mishandles ACKs; against it the queue consumers subscribe
// with ack:auto, and bench says so on stderr.
//
// Every body starts with an ASCII stamp (publisher id, sequence number and send time on the tool's
// monotonic clock, see bench_stamp.go), padded to -size. Receivers keep, per publisher, a bitset of
// the sequence numbers seen, which tells lost, duplicated and out-of-order messages apart exactly;
// on a queue the consumers' bitsets are merged, so that a message two consumers got counts as
// duplicated. A message counts as lost when it has not arrived by the end of the drain: once the
// publishers have stopped, the receivers wait for what is in flight for as long as messages keep
// arriving, and the drain ends when everything has arrived, when nothing has for two seconds, or
// after thirty seconds in all (drainQuiet, drainLimit). A loaded broker can take many seconds to
// empty its queues; what it still delivers is late, not lost.
//
// Invariants of a run:
//
//   - A publisher is never more than -window messages ahead of the slowest receiver of its
//     messages (fanin's publishers share one window; queue producers each count against all the
//     consumers together), so a broker's queues never hold more than the window per receiver.
//   - published and delivered count the measured phase only; lost, duplicated and out_of_order
//     count every message of the run, warm-up and drain included; latency covers messages received
//     in the measured phase.
//   - Every wait is bounded by -timeout; an ERROR frame or a failed connection ends the run at
//     once with the reason and no report; every connection and goroutine of a run is gone when
//     bench returns.
package main
