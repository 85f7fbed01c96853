package turnrelay_test

import (
	"testing"

	"github.com/sipnat/sipnat/internal/leakcheck"
)

// TestMain fails the package's run when a test leaves goroutines running
// sipnat code (the relays' readers, timers) or open sockets behind.
func TestMain(m *testing.M) { leakcheck.Main(m) }
