package sipmsg

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHandleRURIAliasPolicy: an alias an attacker wrote into a
// Request-URI cannot make the proxy send to loopback, itself, private
// ranges it did not allow, or any other address that is not a UA's.
func TestHandleRURIAliasPolicy(t *testing.T) {
	t.Parallel()
	self := netip.MustParseAddr("203.0.113.2")
	pol := &DestPolicy{Self: []netip.Addr{self}, Allow: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}}
	tests := []struct {
		alias  string
		reason string // "" allowed
	}{
		{"198.51.100.7~5060~1", ""},
		{"[2001:db8::7]~5060~2", ""},
		{"10.20.1.1~5060~1", ""}, // allowed range
		{"127.0.0.1~5060~1", "loopback"},
		{"[::1]~5060~1", "loopback"},
		{"[::ffff:127.0.0.1]~5060~1", "loopback"},
		{"203.0.113.2~5070~1", "the proxy's own address"},
		{"[::ffff:203.0.113.2]~5060~1", "the proxy's own address"},
		{"10.0.0.5~5060~1", "private"},
		{"192.168.1.1~80~1", "private"},
		{"[fd00::1]~5060~1", "private"},
		{"100.64.0.1~5060~1", "shared (RFC 6598)"},
		{"169.254.169.254~80~1", "link-local"},
		{"0.0.0.0~5060~1", "unspecified"},
		{"239.1.1.1~5060~1", "multicast"},
		{"224.0.0.1~5060~1", "link-local"},
		{"255.255.255.255~5060~1", "reserved or broadcast"},
	}
	for _, tt := range tests {
		in := "INVITE sip:alice@192.168.1.10:5070;alias=" + tt.alias + " SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.9;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n"
		var m Message
		require.NoError(t, m.Parse([]byte(in)))
		out, a, found, err := HandleRURIAlias([]byte("x"), &m, pol)
		if tt.reason == "" {
			require.NoError(t, err, tt.alias)
			require.True(t, found)
			continue
		}
		require.ErrorIs(t, err, ErrForbiddenDestination, tt.alias)
		var de *DestError
		require.ErrorAs(t, err, &de)
		require.Equal(t, tt.reason, de.Reason, tt.alias)
		require.Equal(t, a.Addr, de.Addr)
		require.False(t, found)
		require.Equal(t, "x", string(out), "nothing appended")
	}
	// the zero policy refuses the allowed range too
	var m Message
	require.NoError(t, m.Parse([]byte("INVITE sip:a@b;alias=10.20.1.1~5060~1 SIP/2.0\r\nl: 0\r\n\r\n")))
	_, _, _, err := HandleRURIAlias(nil, &m, nil)
	require.ErrorIs(t, err, ErrForbiddenDestination)
}

func TestDestPolicyCheckURI(t *testing.T) {
	t.Parallel()
	pol := &DestPolicy{Self: []netip.Addr{netip.MustParseAddr("203.0.113.2")}}
	tests := []struct {
		uri  string
		want netip.AddrPort
		err  error
	}{
		{"sip:198.51.100.7:5070", netip.MustParseAddrPort("198.51.100.7:5070"), nil},
		{"sip:198.51.100.7;transport=tls", netip.MustParseAddrPort("198.51.100.7:5061"), nil},
		{"sip:[2001:db8::7]", netip.MustParseAddrPort("[2001:db8::7]:5060"), nil},
		{"sip:127.0.0.1:5060", netip.MustParseAddrPort("127.0.0.1:5060"), ErrForbiddenDestination},
		{"sip:203.0.113.2:5080", netip.MustParseAddrPort("203.0.113.2:5080"), ErrForbiddenDestination},
		{"sip:198.51.100.7:0", netip.AddrPort{}, ErrForbiddenDestination},
		{"sip:[2001:db8::7]:0", netip.AddrPort{}, ErrForbiddenDestination},
		{"sip:example.com", netip.AddrPort{}, ErrForbiddenDestination},
		{"tel:+123", netip.AddrPort{}, ErrForbiddenDestination},
	}
	for _, tt := range tests {
		got, err := pol.CheckURI([]byte(tt.uri))
		if tt.err != nil {
			require.ErrorIs(t, err, tt.err, tt.uri)
		} else {
			require.NoError(t, err, tt.uri)
		}
		if tt.want.IsValid() {
			require.Equal(t, tt.want, got, tt.uri)
		}
	}
}

func TestRegistrationForPortZero(t *testing.T) {
	t.Parallel()
	var m Message
	require.NoError(t, m.Parse([]byte("REGISTER sip:r SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.2;branch=z9hG4bK1\r\nContact: <sip:a@192.168.1.2>\r\nl: 0\r\n\r\n")))
	_, err := RegistrationFor(&m, netip.MustParseAddrPort("198.51.100.7:0"), UDP)
	require.ErrorIs(t, err, ErrBadAddress)
}
