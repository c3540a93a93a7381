package frame

import "errors"

// The sentinel errors below are the causes of a [ParseError]; match them with errors.Is. Their
// text is written to be sent to the peer as the message header of a STOMP ERROR frame.
var (
	// ErrFrameTooLarge means a frame (command line, header lines and body, without the NUL) is or
	// would become larger than Limits.MaxFrameBytes, including a content-length that announces
	// such a body.
	ErrFrameTooLarge = errors.New("frame too large")

	// ErrTooManyHeaders means a frame has more than Limits.MaxHeaders header lines.
	ErrTooManyHeaders = errors.New("too many headers")

	// ErrHeaderTooLong means a header line, or the command line, is longer than
	// Limits.MaxHeaderBytes, not counting its end-of-line.
	ErrHeaderTooLong = errors.New("header line too long")

	// ErrInvalidCommand means the command line is not one of the fifteen STOMP commands
	// (case-sensitive).
	ErrInvalidCommand = errors.New("invalid command")

	// ErrMalformedHeader means a header line has no colon or an empty header name.
	ErrMalformedHeader = errors.New("malformed header")

	// ErrInvalidEscape means a header holds a backslash sequence the frame's version does not
	// define, such as \t, \r in 1.1, or a backslash that ends the name or value.
	ErrInvalidEscape = errors.New("invalid header escape")

	// ErrBadContentLength means the content-length header is empty or holds anything other than
	// decimal digits.
	ErrBadContentLength = errors.New("invalid content-length")

	// ErrContentLengthMismatch means the byte that follows the content-length bytes of the body
	// is not the NUL that ends every frame.
	ErrContentLengthMismatch = errors.New("frame does not end with NUL after content-length bytes")
)

// ParseError is a fatal protocol error found by a [Parser]. Err is one of the sentinel errors of
// this package and Detail says what exactly was wrong, for logs and for the ERROR frame's body.
// A ParseError is immutable once returned and safe to share between goroutines.
type ParseError struct {
	Err    error
	Detail string
}

// Error returns "<sentinel text>: <detail>", or the sentinel text alone when Detail is empty.
func (e *ParseError) Error() string {
	if e.Detail == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Detail
}

// Unwrap returns the sentinel, so that errors.Is(err, ErrFrameTooLarge) and the like work.
func (e *ParseError) Unwrap() error { return e.Err }
