package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/go-stomp/stomp/v3"
)

// Exit codes; see the package documentation.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitTimeout = 3
)

// errUsage marks a mistake on the command line: a bad flag, a missing argument, a malformed URL or
// header. Errors wrapping it exit 2.
var errUsage = errors.New("usage")

// errTimeout marks a wait that ran out: sub's -timeout, -connect-timeout, or a receipt. Errors
// wrapping it exit 3.
var errTimeout = errors.New("timeout")

// brokerError is an ERROR frame from the broker. Message is its message header; Detail is its body,
// which stompd uses for the specifics, folded onto one line.
type brokerError struct {
	Message string
	Detail  string
}

// Error returns "broker ERROR: MESSAGE (DETAIL)", or without the detail when the body was empty.
func (e *brokerError) Error() string {
	if e.Detail == "" {
		return "broker ERROR: " + e.Message
	}
	return "broker ERROR: " + e.Message + " (" + e.Detail + ")"
}

// newBrokerError folds an ERROR frame's body onto one line, so that one failure is one line on stderr.
func newBrokerError(message string, body []byte) *brokerError {
	if message == "" {
		message = "ERROR frame without a message header"
	}
	return &brokerError{Message: message, Detail: strings.Join(strings.Fields(string(body)), " ")}
}

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, errTimeout), isReceiptTimeout(err):
		return exitTimeout
	}
	return exitFailure
}

// isReceiptTimeout reports whether err is one of go-stomp's receipt or send timeouts, which it
// returns as comparable values rather than wrapped errors.
func isReceiptTimeout(err error) bool {
	var se stomp.Error
	if !errors.As(err, &se) {
		return false
	}
	return se == stomp.ErrMsgReceiptTimeout || se == stomp.ErrMsgSendTimeout || se == stomp.ErrDisconnectReceiptTimeout
}

// errFlagReported is a usage error the flag package has already printed, with the command's usage;
// run prints nothing more for it.
var errFlagReported = fmt.Errorf("%w: bad flag", errUsage)

// errBenchFailed marks a bench run that completed but lost, duplicated or reordered messages, or
// got messages it cannot account for. Errors wrapping it exit 1, after the report.
var errBenchFailed = errors.New("delivery problems")

// errUnexpectedFrame means the broker sent, during a bench connection's handshake, a frame that
// has no place there (anything but CONNECTED, the awaited RECEIPT, or ERROR).
var errUnexpectedFrame = errors.New("unexpected frame")

// errProcFormat means a /proc file read for bench -pid did not have the expected layout.
var errProcFormat = errors.New("unexpected format")
