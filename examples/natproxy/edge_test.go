package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/sipmsg"
)

// TestEdgeThreats: what an attacker sends the proxy is not forwarded: a
// request smuggled after a datagram's Content-Length, another SIP version,
// and aliases, Request-URIs or the second Via of a response naming
// loopback, the proxy or a private range.
func TestEdgeThreats(t *testing.T) {
	t.Parallel()
	p := testProxy(t, Config{Allow: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}})
	var m sipmsg.Message
	const hdrs = "From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c\r\n"

	reg := "REGISTER sip:203.0.113.3 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport\r\n" + hdrs + "CSeq: 1 REGISTER\r\nContact: <sip:a@192.168.1.10:5070>\r\nContent-Length: 0\r\n\r\n"
	smuggled := "INVITE sip:victim@198.51.100.9 SIP/2.0\r\nVia: SIP/2.0/TCP 198.51.100.66;branch=z9hG4bKevil\r\n" + hdrs + "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	out, dst, err := p.Handle(context.Background(), nil, &m, []byte(reg+smuggled), ua)
	require.NoError(t, err)
	require.Equal(t, up, dst)
	require.NotContains(t, string(out), "INVITE")
	require.Equal(t, uint64(len(smuggled)), p.TrailingDropped())

	_, _, err = p.Handle(context.Background(), nil, &m, []byte(strings.Replace(reg, "SIP/2.0\r\n", "SIP/7.0\r\n", 1)), ua)
	require.ErrorIs(t, err, sipmsg.ErrVersion)
	require.Equal(t, 505, sipmsg.StatusFor(err))

	toUA := func(ruri string) ([]byte, netip.AddrPort, error) {
		opt := "OPTIONS " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.2;branch=z9hG4bKk1\r\nRoute: <sip:203.0.113.3:5060;lr>\r\n" + hdrs + "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
		return p.Handle(context.Background(), nil, &m, []byte(opt), up)
	}
	for _, ruri := range []string{
		"sip:a@192.168.1.10;alias=127.0.0.1~5060~1",
		"sip:a@192.168.1.10;alias=203.0.113.3~5080~1", // the proxy itself
		"sip:a@192.168.1.10;alias=203.0.113.2~5060~1", // upstream
		"sip:a@192.168.1.10;alias=10.0.0.1~22~1",
		"sip:a@127.0.0.1:5060",
		"sip:a@10.0.0.1",
		"sip:a@198.51.100.7:0",
	} {
		_, dst, err := toUA(ruri)
		require.ErrorIs(t, err, sipmsg.ErrForbiddenDestination, ruri)
		require.False(t, dst.IsValid(), ruri)
	}
	// a forged response: the proxy's Via on top, a second Via naming a
	// host the proxy must not send to
	// (the proxy's branch is genuine: the attacker had the proxy forward a
	// request with that second Via first)
	response := func(second string) ([]byte, netip.AddrPort, error) {
		own := ownVia(t, p, "OPTIONS sip:a@x SIP/2.0\r\nVia: "+second+"\r\n"+hdrs+"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
		r := "SIP/2.0 200 OK\r\nVia: " + own + "\r\nVia: " + second + "\r\n" + hdrs + "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
		return p.Handle(context.Background(), nil, &m, []byte(r), up)
	}
	for _, second := range []string{
		"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK2",
		"SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK2;received=10.0.0.1;rport=22",
		"SIP/2.0/UDP 203.0.113.3:5080;branch=z9hG4bK2", // the proxy itself
		"SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK2",
	} {
		_, dst, err := response(second)
		require.ErrorIs(t, err, sipmsg.ErrForbiddenDestination, second)
		require.False(t, dst.IsValid(), second)
	}
	for second, want := range map[string]string{
		"SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK2;received=203.0.113.1;rport=40000": "203.0.113.1:40000",
		"SIP/2.0/UDP 10.9.1.1:5070;branch=z9hG4bK2":                                      "10.9.1.1:5070",    // allowed range
		"SIP/2.0/UDP 203.0.113.2:5060;branch=z9hG4bK2":                                   "203.0.113.2:5060", // upstream
	} {
		_, dst, err := response(second)
		require.NoError(t, err, second)
		require.Equal(t, want, dst.String())
	}
	for ruri, want := range map[string]string{
		"sip:a@192.168.1.10;alias=10.9.1.1~5070~1": "10.9.1.1:5070", // allowed range
		"sip:a@198.51.100.7":                       "198.51.100.7:5060",
	} {
		_, dst, err := toUA(ruri)
		require.NoError(t, err, ruri)
		require.Equal(t, want, dst.String())
	}
}

// TestSignedAliases: with an alias key the proxy follows the alias it
// wrote into a UA's Contact, and no alias a request brings along, even one
// naming a public address.
func TestSignedAliases(t *testing.T) {
	t.Parallel()
	p := testProxy(t, Config{AliasKey: []byte("shared secret")})
	var m sipmsg.Message
	const hdrs = "From: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c\r\n"
	reg := "REGISTER sip:203.0.113.3 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport\r\n" + hdrs + "CSeq: 1 REGISTER\r\nContact: <sip:a@192.168.1.10:5070>\r\nContent-Length: 0\r\n\r\n"
	out, _, err := p.Handle(context.Background(), nil, &m, []byte(reg), ua)
	require.NoError(t, err)
	require.NoError(t, m.Parse(out))
	it := m.Values(sipmsg.HdrContact)
	require.True(t, it.Next())
	na, err := sipmsg.ParseNameAddr(m.Bytes(), it.Span())
	require.NoError(t, err)
	signed := string(na.URI.In(m.Bytes()))
	require.Contains(t, signed, ";alias=203.0.113.1~40000~1;aliastok=")

	toUA := func(ruri string) (netip.AddrPort, error) {
		opt := "OPTIONS " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.2;branch=z9hG4bKk1\r\nRoute: <sip:203.0.113.3:5060;lr>\r\n" + hdrs + "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
		_, dst, err := p.Handle(context.Background(), nil, &m, []byte(opt), up)
		return dst, err
	}
	dst, err := toUA(signed)
	require.NoError(t, err)
	require.Equal(t, ua, dst)
	for _, ruri := range []string{
		"sip:a@192.168.1.10:5070;alias=198.51.100.7~5060~1", // public, but not signed
		strings.Replace(signed, "~40000~", "~40001~", 1),    // signed, then changed
	} {
		_, err := toUA(ruri)
		require.ErrorIs(t, err, sipmsg.ErrForbiddenDestination, ruri)
	}
}
