package keepalive

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/leakcheck"
	"github.com/sipnat/sipnat/nat"
	"github.com/sipnat/sipnat/sipmsg"
)

// The leak tests are not parallel: leakcheck counts every goroutine.

// TestLeakKeeper: Keepers on the system clock that failed (a STUN server
// that never answers, a send that errors), and one stopped with a binding
// in flight, leave no goroutine or socket once stopped.
func TestLeakKeeper(t *testing.T) {
	leakcheck.Check(t)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer conn.Close()
	dead, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer dead.Close()
	c := nat.NewClient(conn, nat.ClientConfig{RTO: 5 * time.Millisecond, Rc: 2, Rm: 2})
	defer c.Close()

	var mu sync.Mutex
	var events []Event
	failed := make(chan struct{}, 8)
	onEvent := func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
		if e.Kind == FlowFailed {
			select {
			case failed <- struct{}{}:
			default:
			}
		}
	}
	for _, cfg := range []KeeperConfig{
		{Kind: STUN, Binder: c, Server: dead.LocalAddr().(*net.UDPAddr).AddrPort()},
		{Kind: CRLF, Send: func([]byte) error { return errors.New("broken pipe") }, Transport: sipmsg.TCP},
	} {
		cfg.Timing = Timing{Interval: time.Hour}
		cfg.Timeout = 50 * time.Millisecond
		cfg.OnEvent = onEvent
		k, err := NewKeeper(cfg)
		require.NoError(t, err)
		k.Start()
		k.PingNow()
		select {
		case <-failed:
		case <-time.After(5 * time.Second):
			t.Fatalf("%v keeper: no FlowFailed", cfg.Kind)
		}
		k.Stop()
	}
	// stopped while a binding waits for its answer
	k, err := NewKeeper(KeeperConfig{Kind: STUN, Binder: c, Server: netip.MustParseAddrPort("127.0.0.1:9"), Timing: Timing{Interval: time.Hour}, Timeout: time.Hour})
	require.NoError(t, err)
	k.Start()
	k.PingNow()
	require.Eventually(t, func() bool { return k.Sent() > 0 }, 5*time.Second, time.Millisecond)
	k.Stop()
}

// TestLeakScheduler: a Scheduler on the system clock with contacts whose
// pings fail leaves nothing running after Stop.
func TestLeakScheduler(t *testing.T) {
	leakcheck.Check(t)
	var mu sync.Mutex
	sent := 0
	s, err := NewScheduler(SchedulerConfig{
		Tick: time.Millisecond,
		Send: SenderFunc(func(Ping) error {
			mu.Lock()
			sent++
			mu.Unlock()
			return errors.New("unreachable")
		}),
	})
	require.NoError(t, err)
	for i := range 100 {
		require.NoError(t, s.Set(Contact{Addr: netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), uint16(1000+i)), Interval: 5 * time.Millisecond, Kind: PingOptions}))
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return sent >= 200 }, 5*time.Second, time.Millisecond)
	s.Stop()
	require.ErrorIs(t, s.Set(Contact{Addr: netip.MustParseAddrPort("198.51.100.1:1"), Interval: time.Second, Kind: PingUDP}), ErrStopped)
}
