package agent

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/leakcheck"
)

// TestMain fails the package's run when a test leaves goroutines running
// sipnat code or open sockets behind.
func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestLeakAgent (not parallel: leakcheck counts every goroutine): an Agent
// that started, one whose STUN server never answers, and one closed while
// starting leave nothing running once closed and their sockets closed.
func TestLeakAgent(t *testing.T) {
	leakcheck.Check(t)
	live := startSTUN(t)
	reg := startRegistrar(t)
	dead := listen(t)

	for _, stun := range []netip.AddrPort{live, local(dead)} {
		sip, rtp := listen(t), listen(t)
		a, err := New(Config{SIP: sip, Media: []net.PacketConn{rtp}, STUN: []netip.AddrPort{stun}, Registrar: local(reg.conn), Disable: PortMapping})
		require.NoError(t, err)
		readLoop(t, a, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, _ = a.Start(ctx) // the dead server: Start gives up or decides without STUN
		cancel()
		require.NoError(t, a.Close())
	}
	// closed while Start waits for a STUN server that never answers
	sip := listen(t)
	a, err := New(Config{SIP: sip, STUN: []netip.AddrPort{local(dead)}, Registrar: local(reg.conn), Disable: PortMapping})
	require.NoError(t, err)
	readLoop(t, a, nil)
	started := make(chan error, 1)
	go func() { _, err := a.Start(context.Background()); started <- err }()
	require.NoError(t, a.Close())
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("Start did not return after Close")
	}
}
