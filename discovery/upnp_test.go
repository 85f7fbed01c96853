package discovery

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
)

func upnpMapper(t *testing.T, f *fakeIGD, events chan Event) (*Mapper, *clock.Fake) {
	return upnpMapperTimeout(t, f, events, 0)
}

// upnpMapperTimeout is upnpMapper with the UPnP timeout set: a fake that
// answers at once gets a generous one, since under -race on a loaded CI
// machine the default 500 ms of the tests was once too short for SSDP,
// description and SOAP together.
func upnpMapperTimeout(t *testing.T, f *fakeIGD, events chan Event, timeout time.Duration) (*Mapper, *clock.Fake) {
	t.Helper()
	clock := clock.NewFake(t0)
	cfg := testConfig(clock, nil, f, events)
	cfg.Protocols = []Protocol{ProtoUPnP}
	if timeout > 0 {
		cfg.UPnPTimeout = timeout
	}
	m := NewMapper(cfg)
	t.Cleanup(func() { m.Close() })
	return m, clock
}

func TestUPnPServices(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, service string
		action        string // the add action the gateway must have seen
	}{
		{"IGD v1 WANIPConnection:1", svcWANIP1, "AddPortMapping"},
		{"IGD v2 only: AddAnyPortMapping", svcWANIP2, "AddAnyPortMapping"},
		{"PPP connection", svcWANPPP1, "AddPortMapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeIGD(t, tc.service, "127.0.0.1:0")
			events := make(chan Event, 8)
			m, clock := upnpMapperTimeout(t, f, events, 5*time.Second)
			pr, err := m.Probe(context.Background())
			require.NoError(t, err)
			require.True(t, pr.UPnP, pr.UPnPErr)
			require.Equal(t, tc.service, pr.UPnPService)
			require.Equal(t, "203.0.113.1", pr.External.String())

			mp, err := m.Map(context.Background(), "udp", 5060)
			require.NoError(t, err)
			require.Equal(t, ProtoUPnP, mp.Protocol)
			require.Equal(t, "203.0.113.1:5060", mp.External.String())
			require.Equal(t, time.Hour, mp.Lifetime)
			f.mu.Lock()
			require.Equal(t, 1, f.actions[tc.action])
			require.Equal(t, "127.0.0.1:5060", f.maps[5060])
			f.mu.Unlock()
			require.Equal(t, EventMapped, nextEvent(t, events).Kind)

			clock.Advance(30 * time.Minute)
			require.Equal(t, EventRenewed, nextEvent(t, events).Kind)

			require.NoError(t, m.Unmap(context.Background(), "udp", 5060))
			f.mu.Lock()
			require.Empty(t, f.maps)
			f.mu.Unlock()
		})
	}
}

func TestUPnPOnlyPermanentLeases(t *testing.T) {
	t.Parallel()
	for _, svc := range []string{svcWANIP1, svcWANIP2} {
		t.Run(svc, func(t *testing.T) {
			t.Parallel()
			f := newFakeIGD(t, svc, "127.0.0.1:0", func(f *fakeIGD) { f.onlyPermanent = true })
			m, _ := upnpMapperTimeout(t, f, nil, 5*time.Second)
			mp, err := m.Map(context.Background(), "udp", 5060)
			require.NoError(t, err)
			require.Zero(t, mp.Lifetime, "725 falls back to a permanent lease")
			require.True(t, mp.Expires.IsZero())
			require.Equal(t, time.Hour/2, mp.RenewAt.Sub(mp.Obtained), "permanent leases are still re-checked")
			f.mu.Lock()
			require.Equal(t, []string{"3600", "0"}, f.leases)
			f.mu.Unlock()
		})
	}
}

func TestUPnPConflict(t *testing.T) {
	t.Parallel()
	f := newFakeIGD(t, svcWANIP1, "127.0.0.1:0", func(f *fakeIGD) { f.taken[5060] = true })
	m, _ := upnpMapperTimeout(t, f, nil, 5*time.Second)
	mp, err := m.Map(context.Background(), "udp", 5060)
	require.NoError(t, err)
	require.NotEqual(t, uint16(5060), mp.External.Port(), "718 makes the Mapper pick another port")
	require.True(t, mp.Replaced)
	require.Equal(t, uint16(5060), mp.Internal.Port())
	f.mu.Lock()
	require.Equal(t, "127.0.0.1:5060", f.maps[mp.External.Port()])
	f.mu.Unlock()
}

func TestUPnPHostileGateways(t *testing.T) {
	t.Parallel()
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	for _, tc := range []struct {
		name     string
		desc     func(w http.ResponseWriter, r *http.Request)
		location string // LOCATION host override
		ssdpOn   string // SSDP responder address
		wantErr  string
	}{
		{name: "huge description", desc: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("<root>"))
			chunk := []byte(strings.Repeat("<a>x</a>", 1024))
			for i := 0; i < 2000; i++ { // 16 MB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, wantErr: "too large"},
		{name: "deeply nested", desc: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(strings.Repeat("<a>", 5000) + strings.Repeat("</a>", 5000)))
		}, wantErr: "nested too deeply"},
		{name: "slow (stalls mid-body)", desc: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0">`))
			w.(http.Flusher).Flush()
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		}, wantErr: "deadline exceeded|Timeout"},
		{name: "not XML", desc: func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "<root><device><deviceType>x</root>")
		}, wantErr: "malformed"},
		{name: "SSDP answer from a non-gateway address", ssdpOn: "127.0.0.2:0", wantErr: "no response"},
		{name: "LOCATION off the gateway", location: "127.0.0.3:80", wantErr: "no response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			on := tc.ssdpOn
			if on == "" {
				on = "127.0.0.1:0"
			}
			f := newFakeIGD(t, svcWANIP1, on, func(f *fakeIGD) {
				f.description = tc.desc
				f.locationHost = tc.location
			})
			m, _ := upnpMapper(t, f, nil)
			start := time.Now()
			pr, err := m.Probe(context.Background())
			require.Less(t, time.Since(start), 3*time.Second, "bounded in time")
			require.ErrorIs(t, err, ErrNoPortMapper)
			require.False(t, pr.UPnP)
			require.Regexp(t, tc.wantErr, pr.UPnPErr)
		})
	}
}

// TestAutoFallsBackToUPnP: with every protocol allowed and a gateway that
// speaks only UPnP (port 5351 closed), the fast probe starts UPnP as soon as
// PCP and NAT-PMP have failed and maps over it.
func TestAutoFallsBackToUPnP(t *testing.T) {
	t.Parallel()
	f := newFakeIGD(t, svcWANIP1, "127.0.0.1:0")
	clock := clock.NewFake(t0)
	m := NewMapper(testConfig(clock, nil, f, nil))
	t.Cleanup(func() { m.Close() })
	mp, err := m.Map(context.Background(), "udp", 5060)
	require.NoError(t, err)
	require.Equal(t, ProtoUPnP, mp.Protocol)
}

// TestAutoPrefersPCP: a gateway speaking everything is mapped over PCP and
// the UPnP probe is not even started.
func TestAutoPrefersPCP(t *testing.T) {
	t.Parallel()
	f := newFakeIGD(t, svcWANIP1, "127.0.0.1:0")
	clock := clock.NewFake(t0)
	g := newFakeGW(t, clock, true, true)
	m := NewMapper(testConfig(clock, g, f, nil))
	t.Cleanup(func() { m.Close() })
	mp, err := m.Map(context.Background(), "udp", 5060)
	require.NoError(t, err)
	require.Equal(t, ProtoPCP, mp.Protocol)
	f.mu.Lock()
	require.Zero(t, f.actions["GetExternalIPAddress"], "UPnP probed although PCP answered first")
	f.mu.Unlock()
	pr, err := m.Probe(context.Background()) // an explicit probe asks all three
	require.NoError(t, err)
	require.True(t, pr.PCP && pr.NATPMP && pr.UPnP, pr.String())
}

// TestAutoPCPRefusesThenUPnP: the gateway answers PCP ANNOUNCE but refuses
// every MAP; the Mapper then probes UPnP (skipped by the fast probe) and
// maps over it.
func TestAutoPCPRefusesThenUPnP(t *testing.T) {
	t.Parallel()
	f := newFakeIGD(t, svcWANIP1, "127.0.0.1:0")
	clock := clock.NewFake(t0)
	g := newFakeGW(t, clock, false, true)
	g.set(func(g *fakeGW) { g.refuseMap = 2 }) // NOT_AUTHORIZED
	m := NewMapper(testConfig(clock, g, f, nil))
	t.Cleanup(func() { m.Close() })
	mp, err := m.Map(context.Background(), "udp", 5060)
	require.NoError(t, err)
	require.Equal(t, ProtoUPnP, mp.Protocol)
}
