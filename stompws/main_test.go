package stompws_test

import (
	"testing"

	"github.com/stompd/stompd/stompws/stompwstest"
)

func TestMain(m *testing.M) { stompwstest.VerifyTestMain(m, nil) }
