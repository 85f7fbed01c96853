package sdppion

import (
	"testing"
	"time"

	psdp "github.com/pion/sdp/v3"
	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/benchfloor"
	"github.com/sipnat/sipnat/sdp"
)

// benchCases are the bodies benchmarked: a real sipp offer (audio only,
// 135 bytes), a real baresip offer (audio, 352 bytes) and a WebRTC-style
// audio+video offer with a=rtcp and ICE candidates (2.9 KB). floor lists,
// in body order, what the rewrite changes, for the crude floor
// (benchfloor.Replace).
var benchCases = []struct {
	name  string
	file  string
	opts  sdp.Options
	floor []benchfloor.Pair
}{
	{"audio-sipp", "sipp-uac.sent.sdp", sdp.Options{Public: labPublic, Origin: true},
		benchfloor.Pairs("192.168.1.10", "203.0.113.1", "192.168.1.10", "203.0.113.1")},
	{"audio-baresip", "baresip.sent.sdp", sdp.Options{Public: labPublic, Origin: true, Ports: []sdp.PortMap{{Local: 10008, Public: 20000}, {Local: 10009, Public: 20005}}},
		benchfloor.Pairs("192.168.1.10", "203.0.113.1", "192.168.1.10", "203.0.113.1", "10008", "20000",
			"a=ptime:20\r\n", "a=ptime:20\r\na=rtcp:20005\r\n")},
	{"av-ice", "av-ice.sdp", sdp.Options{Public: labPublic, Origin: true, AllowICE: true, Ports: []sdp.PortMap{{Local: 50000, Public: 40000}, {Local: 50001, Public: 40001}, {Local: 50002, Public: 40002}, {Local: 50003, Public: 40003}}},
		benchfloor.Pairs("192.168.1.10", "203.0.113.1", // o=
			"50000", "40000", "192.168.1.10", "203.0.113.1", "50001", "40001", "192.168.1.10", "203.0.113.1", // m=, c=, a=rtcp
			"50002", "40002", "192.168.1.10", "203.0.113.1", "50003", "40003", "192.168.1.10", "203.0.113.1")},
}

// TestFloorSameOutput: the floor's pairs are exactly the rewrite's edits.
func TestFloorSameOutput(t *testing.T) {
	t.Parallel()
	for _, bc := range benchCases {
		in := readGolden(t, bc.file)
		out, _, err := sdp.AppendRewrite(nil, in, &bc.opts)
		require.NoError(t, err)
		require.Equal(t, string(out), string(benchfloor.Replace(nil, in, bc.floor)), bc.name)
	}
}

// BenchmarkRewrite compares, on the same bodies and with the same change,
// the byte path (AppendRewrite into a reused buffer) with what a user of
// pion/sdp would write: Unmarshal, change (RewriteSession), Marshal.
func BenchmarkRewrite(b *testing.B) {
	for _, bc := range benchCases {
		in := readGolden(b, bc.file)
		opts := bc.opts
		b.Run(bc.name+"/bytes", func(b *testing.B) {
			dst := make([]byte, 0, 2*len(in))
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out, _, err := sdp.AppendRewrite(dst[:0], in, &opts)
				if err != nil || len(out) == 0 {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/floor", func(b *testing.B) {
			dst := make([]byte, 0, 2*len(in))
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				dst = benchfloor.Replace(dst[:0], in, bc.floor)
			}
		})
		b.Run(bc.name+"/pion", func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var sd psdp.SessionDescription
				if err := sd.Unmarshal(in); err != nil {
					b.Fatal(err)
				}
				if _, err := RewriteSession(&sd, &opts); err != nil {
					b.Fatal(err)
				}
				out, err := sd.Marshal()
				if err != nil || len(out) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheck compares the NAT tests alone: Check on bytes against pion
// Unmarshal + CheckSession.
func BenchmarkCheck(b *testing.B) {
	for _, bc := range benchCases {
		in := readGolden(b, bc.file)
		b.Run(bc.name+"/bytes", func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := sdp.Check(in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/pion", func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var sd psdp.SessionDescription
				if err := sd.Unmarshal(in); err != nil {
					b.Fatal(err)
				}
				_ = CheckSession(&sd)
			}
		})
	}
}

// BenchmarkRewritePaired runs the two doors of BenchmarkRewrite and the
// crude floor in alternating batches and reports the fastest batch of
// each, per operation, pion's time over the byte path's (x-faster) and the
// byte path's over the floor's (x-floor). On a machine shared with other work the
// ordinary ns/op of two benchmarks run one after the other move with the
// load; the minimum of interleaved batches does much less. The minimum
// leaves out most of pion's garbage collection, so the ratio is a lower
// bound of the CPU saved.
func BenchmarkRewritePaired(b *testing.B) {
	for _, bc := range benchCases {
		in := readGolden(b, bc.file)
		opts := bc.opts
		b.Run(bc.name, func(b *testing.B) {
			const batch = 50
			dst := make([]byte, 0, 2*len(in))
			fdst := make([]byte, 0, 2*len(in))
			minBytes, minPion, minFloor := time.Duration(1<<62), time.Duration(1<<62), time.Duration(1<<62)
			for i := 0; i < b.N; i += batch {
				start := time.Now()
				for j := 0; j < batch; j++ {
					if _, _, err := sdp.AppendRewrite(dst[:0], in, &opts); err != nil {
						b.Fatal(err)
					}
				}
				minBytes = min(minBytes, time.Since(start)/batch)
				start = time.Now()
				for j := 0; j < batch; j++ {
					var sd psdp.SessionDescription
					if err := sd.Unmarshal(in); err != nil {
						b.Fatal(err)
					}
					if _, err := RewriteSession(&sd, &opts); err != nil {
						b.Fatal(err)
					}
					if _, err := sd.Marshal(); err != nil {
						b.Fatal(err)
					}
				}
				minPion = min(minPion, time.Since(start)/batch)
				start = time.Now()
				for j := 0; j < batch; j++ {
					fdst = benchfloor.Replace(fdst[:0], in, bc.floor)
				}
				minFloor = min(minFloor, time.Since(start)/batch)
			}
			b.ReportMetric(float64(minBytes.Nanoseconds()), "bytes-min-ns/op")
			b.ReportMetric(float64(minPion.Nanoseconds()), "pion-min-ns/op")
			b.ReportMetric(float64(minFloor.Nanoseconds()), "floor-min-ns/op")
			b.ReportMetric(float64(minPion)/float64(minBytes), "x-faster")
			b.ReportMetric(float64(minBytes)/float64(minFloor), "x-floor")
		})
	}
}
