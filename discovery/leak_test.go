package discovery

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/leakcheck"
)

// The leak tests are not parallel: leakcheck counts every goroutine.

// TestLeakMapper: a Mapper that mapped over UPnP, PCP and NAT-PMP, and one
// whose gateway never answers, leave no goroutine and no socket once
// closed, while the gateway is still up (an idle HTTP connection to it
// would otherwise stay open).
func TestLeakMapper(t *testing.T) {
	clk := clock.NewFake(t0)
	f := newFakeIGD(t, svcWANIP1, "127.0.0.1:0")
	g := newFakeGW(t, clk, true, true)
	// the fakes' goroutines and sockets are the test's own
	before := leakcheck.Snapshot()
	for _, p := range []Protocol{ProtoUPnP, ProtoPCP, ProtoNATPMP} {
		cfg := testConfig(clk, g, f, nil)
		cfg.Protocols = []Protocol{p}
		cfg.UPnPTimeout = 5 * time.Second
		m := NewMapper(cfg)
		mp, err := m.Map(context.Background(), "udp", 5060)
		require.NoError(t, err, "%v", p)
		require.Equal(t, p, mp.Protocol)
		require.NoError(t, m.Close())
	}
	// a gateway that is not there: every protocol fails
	cfg := testConfig(clk, nil, nil, nil)
	m := NewMapper(cfg)
	_, err := m.Map(context.Background(), "udp", 5060)
	require.Error(t, err)
	require.NoError(t, m.Close())
	require.NoError(t, before.Settle(leakcheck.Wait))
}
