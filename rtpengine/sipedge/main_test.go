package sipedge

import (
	"testing"

	"github.com/sipnat/sipnat/internal/leakcheck"
)

// TestMain fails the package's run when a test leaves goroutines running
// sipnat code or open sockets behind.
func TestMain(m *testing.M) { leakcheck.Main(m) }
