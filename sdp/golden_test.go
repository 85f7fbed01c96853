package sdp

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden output files in testdata/golden/out")

var (
	labPublic = netip.MustParseAddr("203.0.113.1")
	v6Public  = netip.MustParseAddr("2001:db8::5")
)

// goldenCase is one golden test: testdata/golden/<in>.sdp rewritten with
// opts must equal testdata/golden/out/<name>.sdp, and its Result.String()
// testdata/golden/out/<name>.result.
type goldenCase struct {
	name string
	in   string
	opts Options
}

var goldenCases = []goldenCase{
	// Real captures from the lab (see testdata/README.md).
	{"alg-udptool", "alg-udptool.sent", Options{Public: labPublic, Origin: true}},
	{"alg-udptool-received", "alg-udptool.received-alg", Options{Public: labPublic, Origin: true}},
	{"sipp-uac", "sipp-uac.sent", Options{Public: labPublic, Origin: true}},
	{"sipp-uac-ports", "sipp-uac.sent", Options{Public: labPublic, Ports: []PortMap{{6000, 41000}, {6001, 41007}}, Marker: "a=nortpproxy:yes"}},
	{"sipp-uas-200", "sipp-uas-200", Options{Public: labPublic, Origin: true}},
	{"sipp-uas-200-all", "sipp-uas-200", Options{Public: netip.MustParseAddr("198.51.100.9"), Origin: true, All: true}},
	{"baresip", "baresip.sent", Options{Public: labPublic, Origin: true}},
	{"baresip-v6", "baresip.sent", Options{Public: v6Public}},
	{"baresip-ice", "baresip-ice.sent", Options{Public: labPublic, Origin: true}},
	{"baresip-ice-allow", "baresip-ice.sent", Options{Public: labPublic, Origin: true, AllowICE: true}},
	// Hand-written offers.
	{"audio-video", "audio-video", Options{Public: netip.MustParseAddr("198.51.100.7"), Origin: true,
		Ports:  []PortMap{{16384, 30000}, {16385, 30001}, {16386, 30010}, {16387, 30020}},
		Marker: "a=nortpproxy:yes"}},
	{"audio-video-v6", "audio-video", Options{Public: v6Public, Origin: true}},
	{"rtcp-mux", "rtcp-mux", Options{Public: labPublic, Ports: []PortMap{{4000, 62000}, {4001, 62009}}}},
	{"rtcp-addr", "rtcp-addr", Options{Public: labPublic, Ports: []PortMap{{49170, 50000}, {53020, 50001}, {51372, 1}}}},
	{"av-ice", "av-ice", Options{Public: labPublic, Origin: true}},
	{"av-ice-allow", "av-ice", Options{Public: labPublic, Origin: true, AllowICE: true,
		Ports: []PortMap{{50000, 40000}, {50001, 40001}, {50002, 40002}, {50003, 40003}}}},
	{"ice", "ice", Options{Public: labPublic, Origin: true}},
	{"ice-allow", "ice", Options{Public: labPublic, Origin: true, AllowICE: true, Ports: []PortMap{{50020, 50030}}}},
	{"ipv6", "ipv6", Options{Public: v6Public, Origin: true}},
	{"ipv6-to-v4", "ipv6", Options{Public: labPublic, Origin: true, Ports: []PortMap{{30000, 31000}, {30001, 31001}, {30002, 31002}, {30003, 40000}}}},
	{"hold", "hold", Options{Public: labPublic, Origin: true,
		Ports: []PortMap{{40000, 50000}, {40001, 50001}, {40010, 50010}, {40020, 50020}, {40021, 50030}}}},
	{"port0", "port0", Options{Public: labPublic, Ports: []PortMap{{7078, 9000}, {0, 9999}}}},
	{"bare-lf", "bare-lf", Options{Public: labPublic, Origin: true, Ports: []PortMap{{7078, 40000}, {7079, 40005}}, Marker: "a=nortpproxy:yes"}},
	{"no-final-eol", "no-final-eol", Options{Public: labPublic, Ports: []PortMap{{9000, 9100}, {9001, 9200}}, Marker: "a=nortpproxy:yes"}},
	{"cgnat-fqdn-mcast", "cgnat-fqdn-mcast", Options{Public: labPublic, Origin: true}},
	{"marked", "marked", Options{Public: labPublic, Marker: "a=nortpproxy:yes"}},
}

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name))
	require.NoError(t, err)
	return b
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			in := readGolden(t, tc.in+".sdp")
			prefix := []byte("caller's bytes|")
			dst := append([]byte(nil), prefix...)
			out, res, err := AppendRewrite(dst, in, &tc.opts)
			require.NoError(t, err)
			require.Equal(t, prefix, out[:len(prefix)], "dst prefix kept")
			out = out[len(prefix):]
			outFile := filepath.Join("testdata", "golden", "out", tc.name+".sdp")
			resFile := filepath.Join("testdata", "golden", "out", tc.name+".result")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(outFile), 0o755))
				require.NoError(t, os.WriteFile(outFile, out, 0o644))
				require.NoError(t, os.WriteFile(resFile, []byte(res.String()+"\n"), 0o644))
			}
			want, err := os.ReadFile(outFile)
			require.NoError(t, err)
			require.Equal(t, string(want), string(out))
			wantRes, err := os.ReadFile(resFile)
			require.NoError(t, err)
			require.Equal(t, string(wantRes), res.String()+"\n")
			require.Equal(t, res.Changed(), !bytes.Equal(in, out))

			// Check gives the same findings.
			chk, err := Check(in)
			require.NoError(t, err)
			require.Equal(t, slices.Collect(res.Findings()), slices.Collect(chk.Findings()))

			// Idempotent: a second pass changes nothing.
			again, res2, err := AppendRewrite(nil, out, &tc.opts)
			require.NoError(t, err)
			require.Equal(t, string(out), string(again))
			require.Zero(t, res2.Edits)

			// Line endings: every line of the output ends as the input's first.
			if bytes.Contains(in, []byte("\r\n")) {
				require.Equal(t, bytes.Count(out, []byte("\n")), bytes.Count(out, []byte("\r\n")))
			} else {
				require.NotContains(t, string(out), "\r")
			}
		})
	}
}
