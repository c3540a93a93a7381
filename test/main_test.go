// Package test holds black-box tests that run stompd in-process and drive it with real clients:
// go-stomp over TCP and over WebSocket, a byte-level client that crafts frames, and STOMP.js in Node and
// in headless Chromium.
package test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		removeStompdBinary()
		os.Exit(code)
	}))
}
