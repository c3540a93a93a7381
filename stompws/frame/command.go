package frame

// The STOMP commands. A parsed [Frame] carries one of these very strings in Command, so they can
// be compared with == and switched on.
const (
	CONNECT     = "CONNECT"
	STOMP       = "STOMP"
	CONNECTED   = "CONNECTED"
	SEND        = "SEND"
	SUBSCRIBE   = "SUBSCRIBE"
	UNSUBSCRIBE = "UNSUBSCRIBE"
	ACK         = "ACK"
	NACK        = "NACK"
	BEGIN       = "BEGIN"
	COMMIT      = "COMMIT"
	ABORT       = "ABORT"
	DISCONNECT  = "DISCONNECT"
	MESSAGE     = "MESSAGE"
	RECEIPT     = "RECEIPT"
	ERROR       = "ERROR"
)

// lookupCommand returns the command constant spelled by b, or "" when b is not a STOMP command.
// Returning the constant, rather than string(b), keeps parsing free of allocations.
func lookupCommand(b []byte) string {
	switch string(b) {
	case SEND:
		return SEND
	case MESSAGE:
		return MESSAGE
	case ACK:
		return ACK
	case NACK:
		return NACK
	case SUBSCRIBE:
		return SUBSCRIBE
	case UNSUBSCRIBE:
		return UNSUBSCRIBE
	case CONNECT:
		return CONNECT
	case STOMP:
		return STOMP
	case CONNECTED:
		return CONNECTED
	case BEGIN:
		return BEGIN
	case COMMIT:
		return COMMIT
	case ABORT:
		return ABORT
	case DISCONNECT:
		return DISCONNECT
	case RECEIPT:
		return RECEIPT
	case ERROR:
		return ERROR
	}
	return ""
}

// isHandshake reports whether headers of command are exempt from escaping: the specifications
// leave CONNECT, STOMP and CONNECTED unescaped so that peers can negotiate before agreeing on a
// version.
func isHandshake(command string) bool {
	return command == CONNECT || command == STOMP || command == CONNECTED
}
