package callerconn

import (
	"testing"

	"github.com/sipnat/sipnat/internal/leakcheck"
)

// TestMain fails the package's run when a test leaves a loop or a socket
// behind.
func TestMain(m *testing.M) { leakcheck.Main(m) }
