package turn_test

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/turn"
)

// Failures give clear errors, nothing hangs (every wait is bounded by ctx
// or the retransmissions) and nothing leaks: goroutines and file
// descriptors are back where they were. Not parallel, so the counts are
// this test's own.
func TestLabFailures(t *testing.T) {
	lab := netlab.New(t, netlab.Config{Kind: netlab.APDM, TURN: &netlab.TURN{UserQuota: 1}})
	noUDP := netlab.New(t, netlab.Config{Kind: netlab.APDM, TURN: &netlab.TURN{NoUDPRelay: true}})
	down := netlab.New(t, netlab.Config{Kind: netlab.APDM})
	fds, goroutines := openFDs(t), runtime.NumGoroutine()

	tests := []struct {
		name string
		lab  *netlab.Lab
		cfg  func(*turn.Config)
		want error
		text string
	}{
		{"server down (udp)", down, func(c *turn.Config) { c.RTO, c.Attempts = 50*time.Millisecond, 3 }, turn.ErrUnreachable, "no answer"},
		{"server down (tcp)", down, func(c *turn.Config) { c.Transport = turn.TCP }, turn.ErrUnreachable, "connection refused"},
		{"wrong password", lab, func(c *turn.Config) { c.Password = "wrong" }, turn.ErrUnauthorized, "401"},
		{"unknown user", lab, func(c *turn.Config) { c.Username = "mallory" }, turn.ErrUnauthorized, "401"},
		{"quota", lab, nil, turn.ErrQuota, "486"},
		{"unsupported transport", noUDP, nil, turn.ErrUnsupportedTransport, "442"},
	}
	// the quota case needs the user's one allocation taken
	holder, err := turn.New(lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(lab.Truth().Client, 0)), labConfig())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = holder.Allocate(ctx)
	cancel()
	require.NoError(t, err)

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := labConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var c *turn.Client
			var err error
			if cfg.Transport == turn.TCP {
				cfg.DialContext = tc.lab.DialContext(netlab.LAN)
				c, err = turn.Dial(ctx, cfg)
			} else {
				conn := tc.lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(tc.lab.Truth().Client, 0))
				defer conn.Close()
				c, err = turn.New(conn, cfg)
				require.NoError(t, err)
				defer c.Close()
				_, err = c.Allocate(ctx)
			}
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, tc.text)
			require.NoError(t, ctx.Err(), "the error came before the deadline")
			t.Logf("%s: %v", tc.name, err)
			if c != nil {
				_, ok := c.Allocation()
				require.False(t, ok, "an allocation after an error")
			}
		})
	}
	require.NoError(t, holder.Close())

	eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines }, "goroutines back to the start")
	// the lab's sockets of the subtests are closed by then; the labs' own stay
	eventually(t, 5*time.Second, func() bool { return openFDs(t) <= fds+1 }, "file descriptors back to the start")
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// 437 Allocation Mismatch, both ways: an Allocate from a flow the server
// still has an allocation for (an app restarted on the same socket) clears
// it and allocates; a Refresh of an allocation the server let expire is
// lost and recovered, with events. The clients run on a fake clock, so
// their refreshes come only when the test says.
func TestLabMismatch(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, TURN: &netlab.TURN{MaxAllocateLifetime: 2 * time.Second}})
	conn := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(lab.Truth().Client, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	clk := clock.NewFake(time.Unix(1_000_000, 0))
	var events eventLog
	cfg := labConfig()
	cfg.Clock, cfg.OnEvent, cfg.KeepAlive, cfg.CallerReads = clk, events.add, -1, true

	var cur atomic.Pointer[turn.Client]
	go func() { // the app's read loop hands packets to the current client
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if c := cur.Load(); c != nil {
				c.HandlePacket(buf[:n], from)
			}
		}
	}()

	first, err := turn.New(conn, cfg)
	require.NoError(t, err)
	defer first.Close()
	cur.Store(first)
	a1, err := first.Allocate(ctx)
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, a1.Lifetime)

	// a refresh that comes too late: coturn has expired the allocation
	eventually(t, 10*time.Second, func() bool {
		return strings.Contains(lab.TURNLog(), "allocation timeout")
	}, "coturn expires the allocation")
	eventually(t, 10*time.Second, func() bool {
		clk.Advance(time.Second) // the refresh, then any backoff of the re-allocation
		return len(events.kinds(turn.EventRecovered)) > 0
	}, "recovered")
	lost := events.kinds(turn.EventLost)
	require.NotEmpty(t, lost)
	require.ErrorIs(t, lost[0].Err, turn.ErrMismatch, "lost because of a 437 on Refresh")
	a2, ok := first.Allocation()
	require.True(t, ok)
	t.Logf("events: %v; relayed now %s", events.all(), a2.Relayed)

	// the app restarts: a new client on the same socket, the old allocation still there
	cfg = labConfig()
	cfg.CallerReads = true
	second, err := turn.New(conn, cfg)
	require.NoError(t, err)
	defer second.Close()
	cur.Store(second)
	a3, err := second.Allocate(ctx)
	require.NoError(t, err, "437 on Allocate cleared and retried")
	t.Logf("after 437 on Allocate: relayed %s (was %s)", a3.Relayed, a2.Relayed)
}
