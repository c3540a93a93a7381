// Package test holds black-box tests that run stompd in-process and drive it with real clients:
// go-stomp over TCP and over WebSocket, a byte-level client that crafts frames, and STOMP.js in Node and
// in headless Chromium.
package test

import (
	"testing"

	"github.com/stompd/stompd/stompws/stompwstest"
)

func TestMain(m *testing.M) {
	stompwstest.VerifyTestMain(m, func() { removeStompdBinary(); removeNATSBinary() })
}
