package leakcheck

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func parked(started, stop chan struct{}) {
	close(started)
	<-stop
}

func park(stop chan struct{}) {
	started := make(chan struct{})
	go parked(started, stop)
	<-started
}

// TestSettle: a goroutine running sipnat code and a socket opened after the
// snapshot are reported until they go away; what existed before is not.
func TestSettle(t *testing.T) {
	// goroutines of an earlier run (-count) have unwound
	require.NoError(t, settle(State{goroutines: map[string]int{}, sockets: sockets()}, Wait))
	old := make(chan struct{})
	park(old)
	defer close(old)
	before := Snapshot()
	require.NoError(t, settle(before, 10*time.Millisecond))

	stop := make(chan struct{})
	park(stop)
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	err = settle(before, 20*time.Millisecond)
	require.ErrorContains(t, err, "1 goroutine kind(s) and 1 socket(s) leaked")
	require.ErrorContains(t, err, "leakcheck.parked")
	close(stop)
	require.NoError(t, c.Close())
	require.NoError(t, settle(before, Wait))
}
