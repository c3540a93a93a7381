package metrics

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the handler tests leave no scrape goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
