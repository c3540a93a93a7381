// Package frame is the STOMP 1.0, 1.1 and 1.2 wire codec: an incremental parser that turns a byte
// stream into frames, and append-style encoders that turn frames into bytes. It knows the frame
// grammar and header escaping, nothing of sessions, subscriptions or transports, and imports only
// the standard library.
//
// # Parsing
//
// A [Parser] is fed whatever the transport read: part of a frame, one frame, several frames, or
// bare end-of-line heart-beats. It reports each complete frame to a callback whose [Frame] aliases
// the parser's memory (or the bytes passed to [Parser.Feed]), so steady-state parsing allocates
// nothing. A frame that lies wholly inside the bytes given to Feed is parsed where it lies; only the
// unfinished tail of a Feed is copied into the parser's own buffer.
//
// # Invariants
//
//   - Every limit in [Limits] is checked before memory grows for it. The parser's buffer holds only
//     bytes of the current frame, never more than MaxFrameBytes+1 of them (the frame and its NUL);
//     a partial header line is buffered only up to MaxHeaderBytes+1 bytes (the line and the CR of
//     its CRLF); a content-length too large for MaxFrameBytes is refused before a single body byte
//     is buffered, and an acceptable one does not reserve its size before the bytes arrive.
//   - A buffer grown for a large frame is released once that frame has been delivered, so one big
//     frame does not pin megabytes for the rest of a connection.
//   - CONNECT, STOMP and CONNECTED headers are never unescaped (the 1.1 and 1.2 specifications exempt
//     them so that 1.0 peers can negotiate), and neither are any headers of a 1.0 session.
//   - Header unescaping is strict: an escape the negotiated version does not define is a fatal
//     [ErrInvalidEscape], never passed through.
//   - After any error a Parser stays failed and returns that same error, so a caller cannot resume
//     parsing from a position the parser no longer trusts.
//   - Frame.Command is always one of the package's command constants, never a fresh string.
//
// # Encoding
//
// [AppendCommand], [AppendHeader], [AppendBody], [AppendHeartBeat] and [AppendFrame] append to a
// caller-owned slice and allocate nothing beyond growing it. Headers are escaped for the version the
// caller names; CONNECT, STOMP and CONNECTED are written unescaped, as the specifications require.
package frame
