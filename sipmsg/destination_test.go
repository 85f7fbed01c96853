package sipmsg

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"net/netip"
	"strings"
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

func TestAliasMAC(t *testing.T) {
	t.Parallel()
	for _, key := range [][]byte{[]byte("k"), bytes.Repeat([]byte("x"), 64), bytes.Repeat([]byte("y"), 100)} {
		msg := []byte("[2001:db8::1]~65535~6")
		h := hmac.New(sha256.New, key)
		h.Write(msg)
		want := h.Sum(nil)
		got := aliasMAC(key, msg)
		require.Equal(t, want, got[:], "RFC 2104 HMAC-SHA256, key of %d bytes", len(key))
	}
}

// TestSignedAlias: with an alias key the proxy follows only the aliases it
// wrote; a request that brings its own alias, or changes a signed one, is
// refused whatever address it names.
func TestSignedAlias(t *testing.T) {
	t.Parallel()
	key := []byte("edge-proxy-secret")
	pol := &DestPolicy{AliasKey: key}
	src := netip.MustParseAddrPort("198.51.100.7:40000")
	reg := "REGISTER sip:r SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bK1\r\nContact: <sip:a@192.168.1.2:5060;ob>, sip:b@192.168.1.3\r\nl: 0\r\n\r\n"
	fixed := applyTwice(t, []byte(reg), src, &Fix{Contact: ContactAlias, AliasKey: key})
	require.Contains(t, fixed, "<sip:a@192.168.1.2:5060;ob;alias=198.51.100.7~40000~1;aliastok=")
	require.Contains(t, fixed, "<sip:b@192.168.1.3;alias=198.51.100.7~40000~1;aliastok=")
	// the registrar routes a request to the stored Contact
	var m Message
	require.NoError(t, m.Parse([]byte(fixed)))
	it := m.Values(HdrContact)
	require.True(t, it.Next())
	na, err := ParseNameAddr(m.Bytes(), it.Span())
	require.NoError(t, err)
	ruri := string(na.URI.In(m.Bytes()))
	inv := func(ruri string) *Message {
		var m Message
		require.NoError(t, m.Parse([]byte("INVITE "+ruri+" SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.2;branch=z9hG4bK2\r\nl: 0\r\n\r\n")))
		return &m
	}
	out, a, found, err := HandleRURIAlias(nil, inv(ruri), pol)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, src, a.Addr)
	require.True(t, strings.HasPrefix(string(out), "INVITE sip:a@192.168.1.2:5060;ob SIP/2.0\r\n"), string(out))

	for _, forged := range []string{
		"sip:a@192.168.1.2;alias=203.0.113.66~5060~1",                                 // unsigned
		strings.Replace(ruri, "198.51.100.7~40000", "198.51.100.8~40000", 1),          // signed, then moved
		strings.Replace(ruri, "aliastok=", "aliastok=A", 1),                           // token changed
		"sip:a@192.168.1.2;alias=203.0.113.66~5060~1;aliastok=AAAAAAAAAAAAAAAAAAAAAA", // made up
	} {
		_, _, found, err := HandleRURIAlias(nil, inv(forged), pol)
		require.ErrorIs(t, err, ErrForbiddenDestination, forged)
		require.False(t, found)
	}
	// a new source re-signs: the old token is replaced, not kept
	moved := applyTwice(t, []byte(fixed), netip.MustParseAddrPort("198.51.100.9:41000"), &Fix{Contact: ContactAlias, AliasKey: key})
	require.Equal(t, 2, strings.Count(moved, "aliastok="))
	require.NotContains(t, moved, "198.51.100.7")
}
