package agent

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/binding"
	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/keepalive"
	"github.com/sipnat/sipnat/nat"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	ap := netip.MustParseAddrPort
	local, rtp := ap("192.168.1.10:5062"), ap("192.168.1.10:40000")
	pub := ap("203.0.113.1:5062")
	stunMedia := []MediaPlan{{Local: rtp, Public: ap("203.0.113.1:40000"), From: FromSTUN}}
	res := func(m nat.Behavior, method nat.Method, lifetime, bound time.Duration) *nat.Result {
		return &nat.Result{Public: pub, Mapping: m, Method: method, Lifetime: lifetime, LifetimeBound: bound,
			MappingVaries: m == nat.AddressDependent || m == nat.AddressAndPortDependent}
	}
	mapping := &discovery.Mapping{Protocol: discovery.ProtoUPnP, Internal: local, External: pub}
	rtpMapping := &discovery.Mapping{Protocol: discovery.ProtoUPnP, Internal: rtp, External: ap("203.0.113.1:40000")}
	probe := &discovery.ProbeResult{UPnP: true, External: pub.Addr()}
	for _, tc := range []struct {
		name          string
		o             Observations
		decision      Decision
		contactFrom   Source
		incoming      bool
		twoWay        bool
		assumedKA     bool
		kind          keepalive.Kind
		interval      time.Duration
		reasonHas     string
		mediaFrom     Source
		relayNeeded   bool
		incomingGuess bool
	}{
		{name: "eim, lifetime measured, registrar answers STUN",
			o:        Observations{Local: local, STUNServers: true, NAT: res(nat.EndpointIndependent, nat.MethodRFC5780, 4*time.Second, 5*time.Second), LifetimeAsked: 12 * time.Second, Media: stunMedia, RegistrarSTUN: true},
			decision: Direct, contactFrom: FromSTUN, incoming: true, twoWay: true, kind: keepalive.STUN, interval: 2 * time.Second, reasonHas: "measured", mediaFrom: FromSTUN},
		{name: "RFC 3489 server: lifetime unknown, assumed",
			o:        Observations{Local: local, STUNServers: true, NAT: res(nat.EndpointIndependent, nat.MethodRFC3489, 0, 0), LifetimeAsked: 12 * time.Second, Media: stunMedia},
			decision: Direct, contactFrom: FromSTUN, incoming: true, twoWay: true, assumedKA: true, kind: keepalive.Options, interval: binding.DefaultKeepAlive, reasonHas: "cannot measure it", mediaFrom: FromSTUN, incomingGuess: true},
		{name: "lifetime not asked",
			o:        Observations{Local: local, STUNServers: true, NAT: res(nat.EndpointIndependent, nat.MethodRFC5780, 0, 0), Media: stunMedia},
			decision: Direct, contactFrom: FromSTUN, incoming: true, twoWay: true, assumedKA: true, kind: keepalive.Options, interval: binding.DefaultKeepAlive, reasonHas: "not asked", mediaFrom: FromSTUN, incomingGuess: true},
		{name: "symmetric NAT: relay",
			o:        Observations{Local: local, STUNServers: true, NAT: res(nat.AddressAndPortDependent, nat.MethodRFC5780, 10*time.Second, 12*time.Second), LifetimeAsked: 12 * time.Second, Media: stunMedia, Probe: &discovery.ProbeResult{}},
			decision: Relay, contactFrom: FromSTUN, incoming: true, kind: keepalive.Options, interval: 5 * time.Second, reasonHas: "offers no port mapping", mediaFrom: FromSTUN, relayNeeded: true},
		{name: "symmetric NAT with a port mapping",
			o:        Observations{Local: local, STUNServers: true, NAT: res(nat.AddressAndPortDependent, nat.MethodRFC5780, 0, 0), Probe: probe, Media: []MediaPlan{{Local: rtp, Mapping: rtpMapping}}},
			decision: ViaPortMapping, contactFrom: FromMapping, incoming: true, twoWay: true, assumedKA: true, kind: keepalive.Options, interval: binding.DefaultKeepAlive, reasonHas: "assumed", mediaFrom: FromMapping},
		{name: "no NAT",
			o:        Observations{Local: ap("203.0.113.130:5062"), STUNServers: true, NAT: &nat.Result{Public: ap("203.0.113.130:5062"), Mapping: nat.None}, Media: []MediaPlan{{Local: ap("203.0.113.130:40000")}}},
			decision: Direct, contactFrom: FromLocal, incoming: true, twoWay: true, mediaFrom: FromLocal},
		{name: "UDP blocked",
			o:        Observations{Local: local, STUNServers: true, NAT: &nat.Result{Mapping: nat.Blocked, Method: nat.MethodNone}, NATErr: errors.New("no answer"), Media: []MediaPlan{{Local: rtp}}},
			decision: Relay, contactFrom: FromLocal, mediaFrom: FromLocal, relayNeeded: true},
		{name: "no STUN server, behind NAT: rport only",
			o:        Observations{Local: local, Media: []MediaPlan{{Local: rtp}}},
			decision: Direct, contactFrom: FromRport, incoming: true, assumedKA: true, kind: keepalive.Options, interval: binding.DefaultKeepAlive, reasonHas: "no STUN server", mediaFrom: FromLocal, incomingGuess: true},
		{name: "everything off",
			o:        Observations{Local: local, Disable: STUN | PortMapping | Rport, Media: []MediaPlan{{Local: rtp}}},
			decision: Direct, contactFrom: FromLocal, assumedKA: true, kind: keepalive.Options, interval: binding.DefaultKeepAlive, mediaFrom: FromLocal},
		{name: "forced relay",
			o:        Observations{Local: local, STUNServers: true, NAT: res(nat.EndpointIndependent, nat.MethodRFC5780, 0, 0), Media: stunMedia, Relay: RelayForce},
			decision: ForceRelay, contactFrom: FromSTUN, incoming: true, assumedKA: true, kind: keepalive.Options, interval: binding.DefaultKeepAlive, mediaFrom: FromSTUN, relayNeeded: true, incomingGuess: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			obs := discovery.Observations{Local: o.Local}
			if o.NAT != nil && o.NAT.Public.IsValid() && o.allowed(STUN) {
				obs.STUN = o.NAT.Public
			}
			if o.Probe != nil && o.Probe.UPnP {
				obs.Mapping, obs.Gateway = mapping, o.Probe.External
			}
			o.Choice = discovery.Reconcile(obs)
			p := Decide(o)
			require.Equal(t, tc.decision, p.Decision, p.String())
			require.Equal(t, tc.contactFrom, p.ContactFrom, p.String())
			require.Equal(t, tc.incoming, p.IncomingCalls.Works, p.String())
			require.Equal(t, tc.incomingGuess, p.IncomingCalls.Assumed, p.String())
			require.Equal(t, tc.twoWay, p.TwoWayAudio.Works, p.String())
			require.Equal(t, tc.kind, p.KeepAlive.Kind, p.String())
			require.Equal(t, tc.interval, p.KeepAlive.Interval, p.String())
			require.Equal(t, tc.assumedKA, p.KeepAlive.Assumed, p.String())
			require.Contains(t, p.KeepAlive.Reason+p.TwoWayAudio.Reason, tc.reasonHas, p.String())
			require.Equal(t, tc.mediaFrom, p.Media[0].From, p.String())
			require.Equal(t, tc.relayNeeded, p.Relay.Needed, p.String())
			require.NotEmpty(t, p.IncomingCalls.Reason)
			require.NotEmpty(t, p.TwoWayAudio.Reason)
			if !p.TwoWayAudio.Works && tc.decision != ForceRelay && tc.name != "everything off" && tc.name != "no STUN server, behind NAT: rport only" {
				require.Contains(t, p.TwoWayAudio.Reason, "relay")
			}
		})
	}
}

func TestParseMechanisms(t *testing.T) {
	t.Parallel()
	m, err := ParseMechanisms("stun, rport")
	require.NoError(t, err)
	require.Equal(t, STUN|Rport, m)
	require.Equal(t, "stun,rport", m.String())
	_, err = ParseMechanisms("stun,turn")
	require.ErrorContains(t, err, `unknown mechanism "turn"`)
	require.Equal(t, "none", Mechanism(0).String())
}

// TestPlanJSON: the plan's own durations are milliseconds in JSON.
func TestPlanJSON(t *testing.T) {
	t.Parallel()
	local := netip.MustParseAddrPort("192.168.1.10:5060")
	res := &nat.Result{Public: netip.MustParseAddrPort("203.0.113.1:5060"), Mapping: nat.EndpointIndependent, Method: nat.MethodRFC3489}
	p := Decide(Observations{Local: local, STUNServers: true, NAT: res,
		Choice: discovery.Reconcile(discovery.Observations{Local: local, STUN: res.Public})})
	b, err := json.Marshal(p)
	require.NoError(t, err)
	s := string(b)
	require.Contains(t, s, `"interval_ms":25000`)
	require.Contains(t, s, `"decision":"direct"`)
	require.Contains(t, s, `"incoming_calls":{"works":true,"assumed":true,"reason":`)
}
