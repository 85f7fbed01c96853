package discovery

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/dnstest"
)

// TestParsePrefix64 builds each body field by field from RFC 7225's
// layout (Prefix64-Length, Prefix64, Suffix to 12 octets, optional IPv4
// Prefix Count and pairs of IPv4 Prefix Length and IPv4 Address).
func TestParsePrefix64(t *testing.T) {
	t.Parallel()
	p96 := netip.MustParsePrefix("64:ff9b::/96")
	p32 := netip.MustParsePrefix("2001:db8::/32")
	p40 := netip.MustParsePrefix("2001:db8:100::/40")
	p64 := netip.MustParsePrefix("2001:db8:64:64::/64")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	zero := func(n int) []byte { return make([]byte, n) }
	wkp := []byte{0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}
	nsp32 := []byte{0x20, 0x01, 0x0d, 0xb8}
	for _, c := range []struct {
		name string
		body []byte
		want Prefix64
		err  error
	}{
		{"well-known /96: 12 octets, no suffix", cat([]byte{0, 12}, wkp), Prefix64{Prefix: p96}, nil},
		{"/32: 4 octets and an 8-octet suffix", cat([]byte{0, 4}, nsp32, zero(8)), Prefix64{Prefix: p32}, nil},
		{"/40: 5 octets and a 7-octet suffix", cat([]byte{0, 5}, []byte{0x20, 0x01, 0x0d, 0xb8, 0x01}, zero(7)), Prefix64{Prefix: p40}, nil},
		{"/64: 8 octets and a 4-octet suffix", cat([]byte{0, 8}, []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0x64, 0, 0x64}, zero(4)), Prefix64{Prefix: p64}, nil},
		{"/32 for two IPv4 prefixes", cat([]byte{0, 4}, nsp32, zero(8), []byte{0, 2}, []byte{0, 24, 198, 51, 100, 0}, []byte{0, 8, 10, 9, 9, 9}),
			Prefix64{Prefix: p32, IPv4: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("10.0.0.0/8")}}, nil},
		{"empty (a request's)", nil, Prefix64{}, ErrMalformed},
		{"a Suffix-Length field that is not there (the old layout)", cat([]byte{0, 4}, nsp32, []byte{0, 0}), Prefix64{}, ErrMalformed},
		{"short of 12 octets", cat([]byte{0, 12}, wkp[:11]), Prefix64{}, ErrMalformed},
		{"length in bits, not octets", cat([]byte{0, 96}, wkp), Prefix64{}, ErrMalformed},
		{"length 9", cat([]byte{0, 9}, wkp), Prefix64{}, ErrMalformed},
		{"u octet set in a /96", cat([]byte{0, 12}, []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0xff, 0, 0, 0}), Prefix64{}, ErrMalformed},
		{"non-zero suffix", cat([]byte{0, 4}, nsp32, []byte{0, 0, 0, 0, 0, 0, 0, 7}), Prefix64{}, ErrUnsupported},
		{"non-zero u octet of a /32 (the suffix's first)", cat([]byte{0, 4}, nsp32, []byte{0, 0, 0, 0, 1, 0, 0, 0}), Prefix64{}, ErrUnsupported},
		{"IPv4 count truncated", cat([]byte{0, 12}, wkp, []byte{0}), Prefix64{}, ErrMalformed},
		{"IPv4 count zero", cat([]byte{0, 12}, wkp, []byte{0, 0}), Prefix64{}, ErrMalformed},
		{"IPv4 list short", cat([]byte{0, 12}, wkp, []byte{0, 2, 0, 24, 198, 51, 100, 0}), Prefix64{}, ErrMalformed},
		{"IPv4 prefix of 33 bits", cat([]byte{0, 12}, wkp, []byte{0, 1, 0, 33, 198, 51, 100, 0}), Prefix64{}, ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parsePrefix64(c.body)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
			if len(got.IPv4) == 0 {
				enc := appendPrefix64(nil, got)
				require.Equal(t, c.body, enc[4:4+len(c.body)], "the fake server writes the same layout")
			}
		})
	}
}

// TestPrefix64InResponse: the option round-trips through a whole ANNOUNCE
// answer; a broken one leaves the rest of the answer standing.
func TestPrefix64InResponse(t *testing.T) {
	t.Parallel()
	resp := []byte{2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}
	resp = append(resp, make([]byte, 12)...)
	want := []Prefix64{{Prefix: netip.MustParsePrefix("2001:db8:64::/96")},
		{Prefix: netip.MustParsePrefix("2001:db8:100::/40"), IPv4: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}
	b := resp
	for _, p := range want {
		b = appendPrefix64(b, p)
	}
	r, err := parsePCPResponse(b)
	require.NoError(t, err)
	require.Equal(t, uint32(9), r.Epoch)
	require.Equal(t, want, r.Prefix64)
	require.NoError(t, r.Prefix64Err)

	b = append(append([]byte{}, resp...), pcpOptPrefix64, 0, 0, 14, 0, 96) // bits, not octets
	b = append(b, make([]byte, 14)...)                                     // 12 octets and the padding
	r, err = parsePCPResponse(b)
	require.NoError(t, err, "the answer stands")
	require.Empty(t, r.Prefix64)
	require.ErrorIs(t, r.Prefix64Err, ErrMalformed)
}

func TestMapperPrefix64(t *testing.T) {
	t.Parallel()
	nsp := netip.MustParsePrefix("2001:db8:64::/96")
	some := Prefix64{Prefix: netip.MustParsePrefix("64:ff9b::/96"), IPv4: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	for _, c := range []struct {
		name string
		set  func(g *fakeGW)
		want []Prefix64
		err  error
	}{
		{"two prefixes", func(g *fakeGW) { g.prefix64 = []Prefix64{some, {Prefix: nsp}} }, []Prefix64{some, {Prefix: nsp}}, nil},
		{"no PREFIX64 (no RFC 7225)", func(*fakeGW) {}, nil, ErrNoPrefix64},
		{"the request's option echoed (miniupnpd)", func(g *fakeGW) { g.prefix64Raw = appendPrefix64Request(nil) }, nil, ErrNoPrefix64},
		{"a broken PREFIX64", func(g *fakeGW) { g.prefix64Raw = []byte{pcpOptPrefix64, 0, 0, 2, 0, 12, 0, 0} }, nil, ErrMalformed},
		{"silent gateway", func(g *fakeGW) { g.silent = true }, nil, ErrNoResponse},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(time.Unix(1e9, 0))
			g := newFakeGW(t, clk, false, true)
			g.set(c.set)
			cfg := testConfig(clk, g, nil, nil)
			cfg.PMPTimeout = 150 * time.Millisecond
			m := NewMapper(cfg)
			defer m.Close()
			got, err := m.Prefix64(context.Background())
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
			require.Equal(t, 1, g.count("pcp-prefix64"), "the ANNOUNCE asked for PREFIX64")
			require.Equal(t, []netip.Prefix{nsp, some.Prefix}, prefixesOf(got), "a prefix for every IPv4 address first")
		})
	}
}

// TestDetectNAT64Rule: the one rule takes whichever source names a
// prefix; when none does, the error says what each answered.
func TestDetectNAT64Rule(t *testing.T) {
	t.Parallel()
	noDNS := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS server in this test")
	}}
	nsp := netip.MustParsePrefix("2001:db8:64::/96")
	clk := clock.NewFake(time.Unix(1e9, 0))

	g := newFakeGW(t, clk, false, true)
	g.set(func(g *fakeGW) { g.prefix64 = []Prefix64{{Prefix: nsp}} })
	gcfg := testConfig(clk, g, nil, nil)
	n, err := DetectNAT64(context.Background(), NAT64Config{Resolver: noDNS, PCP: &gcfg})
	require.NoError(t, err)
	require.Equal(t, NAT64{Prefixes: []netip.Prefix{nsp}, From: FromPCP}, n)

	plain := newFakeGW(t, clk, false, true) // a PCP server without RFC 7225
	pcfg := testConfig(clk, plain, nil, nil)
	_, err = DetectNAT64(context.Background(), NAT64Config{Resolver: noDNS, PCP: &pcfg})
	require.ErrorIs(t, err, ErrNoNAT64)
	require.ErrorIs(t, err, ErrNoPrefix64)
	require.ErrorContains(t, err, "dns64: look up ipv4only.arpa AAAA")

	_, err = DetectNAT64(context.Background(), NAT64Config{NoDNS: true})
	require.ErrorIs(t, err, ErrNoNAT64)
}

// TestDetectNAT64DNS64: a resolver pointed at a DNS server that knows no
// ipv4only.arpa AAAA gives ErrNoNAT64; one that synthesises it (a DNS64)
// gives its prefix.
func TestDetectNAT64DNS64(t *testing.T) {
	t.Parallel()
	wkp := netip.MustParsePrefix("64:ff9b::/96")
	for _, c := range []struct {
		name  string
		names map[string][]netip.Addr
		want  NAT64
		err   error
	}{
		{"no DNS64", nil, NAT64{}, ErrNoNAT64},
		{"DNS64 with the well-known prefix", map[string][]netip.Addr{"ipv4only.arpa": {netip.MustParseAddr("64:ff9b::c000:aa"), netip.MustParseAddr("64:ff9b::c000:ab")}},
			NAT64{Prefixes: []netip.Prefix{wkp}, From: FromDNS64}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := DetectNAT64(ctx, NAT64Config{Resolver: dnstest.Resolver(t, c.names)})
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}
