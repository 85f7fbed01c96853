package ipaddr_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/ipaddr"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		class   ipaddr.Class
		private bool
		cgnat   bool
	}{
		{"", ipaddr.ClassInvalid, false, false},
		{"8.8.8.8", ipaddr.ClassPublic, false, false},
		{"2606:4700::1111", ipaddr.ClassPublic, false, false},
		{"10.1.2.3", ipaddr.ClassPrivate, true, false},
		{"172.16.0.1", ipaddr.ClassPrivate, true, false},
		{"172.32.0.1", ipaddr.ClassPublic, false, false},
		{"192.168.1.10", ipaddr.ClassPrivate, true, false},
		{"fd00::1", ipaddr.ClassPrivate, true, false},
		{"100.64.0.2", ipaddr.ClassShared, true, true},
		{"100.127.255.255", ipaddr.ClassShared, true, true},
		{"100.128.0.1", ipaddr.ClassPublic, false, false},
		{"127.0.0.1", ipaddr.ClassLoopback, true, false},
		{"::1", ipaddr.ClassLoopback, true, false},
		{"169.254.1.1", ipaddr.ClassLinkLocal, true, false},
		{"fe80::1", ipaddr.ClassLinkLocal, true, false},
		{"0.0.0.0", ipaddr.ClassUnspecified, false, false},
		{"::", ipaddr.ClassUnspecified, false, false},
		{"224.0.0.1", ipaddr.ClassLinkLocal, true, false},
		{"239.1.1.1", ipaddr.ClassMulticast, false, false},
		{"ff05::1", ipaddr.ClassMulticast, false, false},
		{"203.0.113.1", ipaddr.ClassDocumentation, false, false},
		{"198.51.100.2", ipaddr.ClassDocumentation, false, false},
		{"192.0.2.7", ipaddr.ClassDocumentation, false, false},
		{"2001:db8::1", ipaddr.ClassDocumentation, false, false},
		{"::ffff:192.168.1.1", ipaddr.ClassPrivate, true, false},
		{"::ffff:100.64.0.1", ipaddr.ClassShared, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			var a netip.Addr
			if tt.addr != "" {
				a = netip.MustParseAddr(tt.addr)
			}
			require.Equal(t, tt.class, ipaddr.Classify(a))
			require.Equal(t, tt.private, ipaddr.IsPrivate(a))
			require.Equal(t, tt.cgnat, ipaddr.IsCGNAT(a))
		})
	}
}

func TestIsGlobal(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		addr   string
		global bool
	}{
		{"8.8.8.8", true},
		{"2606:4700::1111", true},
		{"203.0.113.1", true},
		{"2001:db8::1", true},
		{"::ffff:8.8.8.8", true},
		{"10.1.2.3", false},
		{"fd00::1", false},
		{"100.64.0.2", false},
		{"::1", false},
		{"fe80::1", false},
		{"::", false},
		{"ff05::1", false},
	} {
		require.Equal(t, tt.global, ipaddr.IsGlobal(netip.MustParseAddr(tt.addr)), tt.addr)
	}
	require.False(t, ipaddr.IsGlobal(netip.Addr{}))
}

func TestClassString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "shared (RFC 6598)", ipaddr.ClassShared.String())
	require.Equal(t, "private", ipaddr.ClassPrivate.String())
	require.Equal(t, "unknown", ipaddr.Class(200).String())
}
