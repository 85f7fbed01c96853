package leakcheck_test

import (
	"fmt"
	"net"
	"time"

	"github.com/sipnat/sipnat/internal/leakcheck"
)

// ExampleSnapshot finds a socket left open since the snapshot, and nothing
// once it is closed. A test would rather call Check(t) first, or Main from
// TestMain.
func ExampleSnapshot() {
	before := leakcheck.Snapshot()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("open:", before.Settle(10*time.Millisecond) != nil)
	conn.Close()
	fmt.Println("closed:", before.Settle(leakcheck.Wait))
	// Output:
	// open: true
	// closed: <nil>
}
