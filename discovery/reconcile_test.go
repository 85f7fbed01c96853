package discovery

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestReconcile(t *testing.T) {
	t.Parallel()
	local := ap("192.168.1.10:5060")
	mapping := func(ext string) *Mapping {
		return &Mapping{Protocol: ProtoPCP, Internal: local, External: ap(ext)}
	}
	for _, tc := range []struct {
		name      string
		o         Observations
		contact   string
		source    Source
		cgnat     bool
		double    bool
		reachable bool
	}{
		{"static wins", Observations{Local: local, Static: ap("198.51.100.9:5060"), STUN: ap("203.0.113.1:5060")}, "198.51.100.9:5060", SourceStatic, false, false, true},
		{"public mapping agrees with STUN", Observations{Local: local, Mapping: mapping("203.0.113.1:5060"), STUN: ap("203.0.113.1:40001")}, "203.0.113.1:5060", SourceMapping, false, false, true},
		{"public mapping alone", Observations{Local: local, Mapping: mapping("203.0.113.1:5060")}, "203.0.113.1:5060", SourceMapping, false, false, true},
		{"CGNAT: gateway 100.64, STUN public", Observations{Local: local, Mapping: mapping("100.64.0.2:5060"), STUN: ap("203.0.113.1:5060")}, "203.0.113.1:5060", SourceSTUN, true, true, false},
		{"CGNAT without a mapping", Observations{Local: local, Gateway: netip.MustParseAddr("100.64.0.2"), STUN: ap("203.0.113.1:6000")}, "203.0.113.1:6000", SourceSTUN, true, true, false},
		{"double NAT: gateway private", Observations{Local: local, Mapping: mapping("10.0.0.2:5060"), STUN: ap("203.0.113.1:5060")}, "203.0.113.1:5060", SourceSTUN, false, true, false},
		{"gateway public but STUN differs", Observations{Local: local, Mapping: mapping("198.51.100.1:5060"), STUN: ap("203.0.113.1:5060")}, "203.0.113.1:5060", SourceSTUN, false, true, false},
		{"CGNAT, no STUN", Observations{Local: local, Mapping: mapping("100.64.0.2:5060")}, "100.64.0.2:5060", SourceMapping, true, true, false},
		{"STUN only", Observations{Local: local, STUN: ap("203.0.113.1:7000")}, "203.0.113.1:7000", SourceSTUN, false, false, false},
		{"public local, no NAT", Observations{Local: ap("203.0.113.130:5060"), STUN: ap("203.0.113.130:5060")}, "203.0.113.130:5060", SourceLocal, false, false, true},
		{"nothing", Observations{Local: local}, "192.168.1.10:5060", SourceLocal, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Reconcile(tc.o)
			require.Equal(t, tc.contact, c.Contact.String(), c.Reason)
			require.Equal(t, tc.source, c.Source, c.Reason)
			require.Equal(t, tc.cgnat, c.CGNAT, c.Reason)
			require.Equal(t, tc.double, c.DoubleNAT, c.Reason)
			require.Equal(t, tc.reachable, c.Reachable, c.Reason)
			require.NotEmpty(t, c.Reason)
		})
	}
}

// TestReconcilePinhole: a firewall pinhole (an IPv6 mapping to the UA's own
// address) makes the UA reachable at its own address, through the mapping.
func TestReconcilePinhole(t *testing.T) {
	t.Parallel()
	local := netip.MustParseAddrPort("[2001:db8:1::10]:5062")
	c := Reconcile(Observations{Local: local, STUN: local, Mapping: &Mapping{Protocol: ProtoPCP, Internal: local, External: local}})
	require.Equal(t, SourceMapping, c.Source)
	require.Equal(t, local, c.Contact)
	require.True(t, c.Reachable)
	require.Contains(t, c.Reason, "pinhole")
	c = Reconcile(Observations{Local: local, STUN: local})
	require.Equal(t, SourceLocal, c.Source, "without a pinhole the own address is still the contact")
}
