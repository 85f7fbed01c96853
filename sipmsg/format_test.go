package sipmsg

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAppendPort checks the port formatter against strconv for every port.
func TestAppendPort(t *testing.T) {
	t.Parallel()
	for p := 0; p <= 65535; p++ {
		roomy := append(make([]byte, 0, 16), 'x') // the words stored whole
		if got := string(appendPort(roomy, uint16(p))); got != "x"+strconv.Itoa(p) {
			require.Failf(t, "appendPort", "port %d: got %q", p, got)
		}
		if got := string(appendPort([]byte("x"), uint16(p))); got != "x"+strconv.Itoa(p) {
			require.Failf(t, "appendPort", "port %d, no room: got %q", p, got)
		}
	}
}

// TestAppendIPv4 checks the dotted-quad formatter against netip for every
// octet value in every position.
func TestAppendIPv4(t *testing.T) {
	t.Parallel()
	for o := 0; o < 256; o++ {
		b := byte(o)
		for _, a := range []netip.Addr{
			netip.AddrFrom4([4]byte{b, 1, 22, 255}),
			netip.AddrFrom4([4]byte{255, b, 99, 0}),
			netip.AddrFrom4([4]byte{0, 100, b, 9}),
			netip.AddrFrom4([4]byte{10, 0, 0, b}),
		} {
			require.Equal(t, "y"+a.String(), string(appendIPv4([]byte("y"), a)))
			require.Equal(t, "y"+a.String(), string(appendIPv4(append(make([]byte, 0, 32), 'y'), a)))
		}
	}
	// every combination of octet lengths: every place a word can start
	o := [3]byte{5, 55, 255}
	for i := 0; i < 81; i++ {
		a := netip.AddrFrom4([4]byte{o[i%3], o[i/3%3], o[i/9%3], o[i/27%3]})
		require.Equal(t, "y"+a.String(), string(appendIPv4(append(make([]byte, 0, 32), 'y'), a)))
	}
}

// TestScanPort checks scanPort against parseUint over the run of digits.
func TestScanPort(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "0", "5060", "65535", "65536", "99999", "000000000080", "0000000080",
		"123456789012345678901234567890", "5060;x", "x", "18446744073709551617"} {
		b := []byte(s + ";")
		e := 0
		for e < len(b) && isDigit(b[e]) {
			e++
		}
		wp, wok := parseUint(b[:e], 65535)
		p, next, ok := scanPort(b, 0, len(b))
		require.Equal(t, wok, ok, s)
		require.Equal(t, e, next, s)
		if ok {
			require.Equal(t, wp, p, s)
		}
	}
}

// TestSrcText checks the source texts the rewrites share against the
// formatters they replace.
func TestSrcText(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"203.0.113.1:40000", "[2001:db8::1]:5060", "[::ffff:192.0.2.7]:1", "[fe80::1%eth0]:65535"} {
		ap := netip.MustParseAddrPort(s)
		var st srcText
		st.set(ap)
		a := ap.Addr().Unmap()
		want := a.WithZone("").String()
		for _, room := range []int{0, 64} { // appended in pieces and as whole words
			hp := st.appendPort(append(st.appendHost(make([]byte, 0, room)), ':'))
			require.Equal(t, string(appendHostPort(nil, ap.Addr(), ap.Port())), string(hp), s)
			require.Equal(t, want, string(st.appendParam(make([]byte, 0, room))), s)
		}
	}
}

func TestTransportText(t *testing.T) {
	t.Parallel()
	for tr := UDP; tr <= WSS; tr++ {
		b, err := tr.MarshalText()
		require.NoError(t, err)
		var back Transport
		require.NoError(t, back.UnmarshalText(b))
		require.Equal(t, tr, back, string(b))
		require.Equal(t, tr != UDP, tr.Reliable(), tr.String())
	}
	b, err := TransportUnknown.MarshalText()
	require.NoError(t, err)
	require.Empty(t, b)
	var tr Transport
	require.NoError(t, tr.UnmarshalText(nil))
	require.Equal(t, TransportUnknown, tr)
	require.ErrorIs(t, tr.UnmarshalText([]byte("carrier-pigeon")), ErrMalformed)
	require.False(t, TransportUnknown.Reliable())
}
