package sdppion

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	psdp "github.com/pion/sdp/v3"
	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/sdp"
)

var (
	labPublic = netip.MustParseAddr("203.0.113.1")
	v6Public  = netip.MustParseAddr("2001:db8::5")
)

// goldenDir holds package sdp's golden bodies: real captures and
// hand-written offers (see ../testdata/README.md).
var goldenDir = filepath.Join("..", "testdata", "golden")

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name))
	require.NoError(t, err)
	return b
}

// doorOptions are the option sets both doors are compared under: every
// field of Options on and off, both address families, with and without a
// port map that covers the golden bodies' RTP and RTCP ports.
func doorOptions() []sdp.Options {
	ports := []sdp.PortMap{
		{Local: 6000, Public: 41000}, {Local: 6001, Public: 41007}, {Local: 10008, Public: 20000}, {Local: 10009, Public: 20005},
		{Local: 16384, Public: 30000}, {Local: 16385, Public: 30001}, {Local: 16386, Public: 30010}, {Local: 16387, Public: 30020},
		{Local: 4000, Public: 62000}, {Local: 4001, Public: 62009}, {Local: 49170, Public: 50000}, {Local: 53020, Public: 50001},
		{Local: 50000, Public: 40000}, {Local: 50001, Public: 40001}, {Local: 50002, Public: 40002}, {Local: 50003, Public: 40003},
		{Local: 7078, Public: 40000}, {Local: 7079, Public: 40005}, {Local: 9000, Public: 9100}, {Local: 9001, Public: 9200},
		{Local: 30000, Public: 31000}, {Local: 30001, Public: 31001}, {Local: 40000, Public: 50000}, {Local: 40001, Public: 50001},
	}
	var out []sdp.Options
	for sel := 0; sel < 32; sel++ {
		o := sdp.Options{Public: labPublic}
		if sel&1 != 0 {
			o.Public = v6Public
		}
		o.Origin = sel&2 != 0
		o.All = sel&4 != 0
		o.AllowICE = sel&8 != 0
		if sel&16 != 0 {
			o.Ports, o.Marker = ports, "a=nortpproxy:yes"
		}
		out = append(out, o)
	}
	// An IPv6-only UA behind NAT64 reading a peer's SDP (RFC 6052).
	for _, origin := range []bool{false, true} {
		out = append(out, sdp.Options{NAT64: netip.MustParsePrefix("64:ff9b::/96"), Origin: origin, AllowICE: origin})
	}
	return out
}

// withoutLines returns the findings of r with their line numbers cleared:
// the pion door has none.
func withoutLines(r sdp.Result) []sdp.Finding {
	fs := slices.Collect(r.Findings())
	for i := range fs {
		fs[i].Line = 0
	}
	return fs
}

// sameResult fails unless the byte door's Result b and the pion door's s
// agree on everything but line numbers.
func sameResult(t testing.TB, b, s sdp.Result) {
	t.Helper()
	require.Equal(t, b.Tests, s.Tests)
	require.Equal(t, b.Edits, s.Edits)
	require.Equal(t, b.SkippedICE, s.SkippedICE)
	require.Equal(t, b.Truncated, s.Truncated)
	require.Equal(t, withoutLines(b), withoutLines(s))
}

// TestGoldenBothDoors proves the byte path and the pion door give the same
// result on every golden body under every option set: pion's parse of the
// byte path's output equals pion's parse of the marshalled RewriteSession
// output, and the Results agree (the pion door has no line numbers).
func TestGoldenBothDoors(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.sdp"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, fn := range files {
		name := filepath.Base(fn)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in := readGolden(t, name)
			for _, opts := range doorOptions() {
				out, res, err := sdp.AppendRewrite(nil, in, &opts)
				require.NoError(t, err)
				if !bytes.HasSuffix(in, []byte("\n")) {
					// pion cannot read a body whose last line has no
					// line ending (io.EOF), so it has no door here; the
					// byte path keeps the missing ending.
					var sd psdp.SessionDescription
					require.Error(t, sd.Unmarshal(in))
					if bytes.HasSuffix(out, []byte("\n")) {
						var fromBytes psdp.SessionDescription
						require.NoError(t, fromBytes.Unmarshal(out), "added lines end, so pion reads the output")
					}
					continue
				}
				var fromBytes psdp.SessionDescription
				require.NoError(t, fromBytes.Unmarshal(out), "pion parses the byte path's output")

				var sd psdp.SessionDescription
				require.NoError(t, sd.Unmarshal(in))
				sres, err := RewriteSession(&sd, &opts)
				require.NoError(t, err)
				m, err := sd.Marshal()
				require.NoError(t, err)
				var fromStruct psdp.SessionDescription
				require.NoError(t, fromStruct.Unmarshal(m))
				require.Equal(t, fromBytes, fromStruct, "options %+v", opts)
				sameResult(t, res, sres)

				var sd2 psdp.SessionDescription
				require.NoError(t, sd2.Unmarshal(in))
				chk, err := sdp.Check(in)
				require.NoError(t, err)
				cres := CheckSession(&sd2)
				require.Equal(t, withoutLines(chk), withoutLines(cres))
			}
		})
	}
}

func TestRewriteSessionErrors(t *testing.T) {
	t.Parallel()
	good := &sdp.Options{Public: labPublic}
	tests := []struct {
		name string
		sd   *psdp.SessionDescription
		opts *sdp.Options
		want error
	}{
		{"nil options", &psdp.SessionDescription{}, nil, sdp.ErrBadOptions},
		{"no public address", &psdp.SessionDescription{}, &sdp.Options{}, sdp.ErrBadOptions},
		{"bad marker", &psdp.SessionDescription{}, &sdp.Options{Public: labPublic, Marker: "x"}, sdp.ErrBadOptions},
		{"nil description", nil, good, sdp.ErrMalformed},
		{"nil media", &psdp.SessionDescription{MediaDescriptions: []*psdp.MediaDescription{nil}}, good, sdp.ErrMalformed},
		{"port out of range", &psdp.SessionDescription{MediaDescriptions: []*psdp.MediaDescription{
			{MediaName: psdp.MediaName{Port: psdp.RangedPort{Value: 70000}}}}}, good, sdp.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := RewriteSession(tt.sd, tt.opts)
			require.ErrorIs(t, err, tt.want)
		})
	}
	require.Zero(t, CheckSession(nil).Tests)
}

// FuzzRewriteSession holds the pion door to the byte path: for input pion
// parses and that has RFC 8866's shape, pion parses the byte path's output
// too, and where pion's round trip is byte-exact (the input is in pion's
// own form) RewriteSession gives the byte path's output byte for byte and
// the same Result.
func FuzzRewriteSession(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.sdp"))
	for _, fn := range files {
		b, err := os.ReadFile(fn)
		if err != nil {
			continue
		}
		f.Add(b, uint8(0x1f))
		// The same body in pion's own form, so the fuzzer starts from
		// inputs where the two doors must agree byte for byte.
		var sd psdp.SessionDescription
		if sd.Unmarshal(b) == nil {
			if m, err := sd.Marshal(); err == nil {
				f.Add(m, uint8(0x1e))
			}
		}
	}
	all := doorOptions()
	f.Fuzz(func(t *testing.T, in []byte, sel uint8) {
		opts := &all[int(sel)%len(all)]
		out, res, err := sdp.AppendRewrite(nil, in, opts)
		var sd psdp.SessionDescription
		if err != nil || sd.Unmarshal(in) != nil || !rfcShape(in) {
			// Also pion accepts bodies cut short, or ending in a stray
			// byte, at EOF: only RFC 8866's shape is compared.
			return
		}
		var fromBytes psdp.SessionDescription
		if err := fromBytes.Unmarshal(out); err != nil {
			t.Fatalf("pion parses input but not output: %v\nin:  %q\nout: %q", err, in, out)
		}
		if m0, err := sd.Marshal(); err != nil || !bytes.Equal(m0, in) {
			return
		}
		sres, err := RewriteSession(&sd, opts)
		if err != nil {
			t.Fatalf("pion door: %v", err)
		}
		m, err := sd.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m, out) {
			t.Fatalf("doors differ:\nbytes: %q\npion:  %q", out, m)
		}
		sameResult(t, res, sres)
	})
}

// rfcShape reports whether b has v=, o=, s= and t= lines, every line is
// <letter>=<value> and the last line ends.
func rfcShape(b []byte) bool {
	if !bytes.HasSuffix(b, []byte("\n")) {
		return false
	}
	var seen [4]bool
	for _, l := range bytes.Split(b[:len(b)-1], []byte("\n")) {
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) < 2 || l[1] != '=' || l[0] < 'a' || l[0] > 'z' {
			return false
		}
		switch l[0] {
		case 'v':
			seen[0] = true
		case 'o':
			seen[1] = true
		case 's':
			seen[2] = true
		case 't':
			seen[3] = true
		}
	}
	return seen == [4]bool{true, true, true, true}
}
