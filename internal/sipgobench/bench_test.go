package sipgobench

import (
	"bytes"
	"math"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emiago/sipgo/sip"

	"github.com/sipnat/sipnat/internal/benchfloor"
	"github.com/sipnat/sipnat/ipaddr"
	"github.com/sipnat/sipnat/sipmsg"
)

var src = netip.MustParseAddrPort("203.0.113.1:40000")

// sources are the senders the benchmarks take in turn, one per message, as
// a UDP proxy sees them: neither side can keep the text of the last
// source's address for the next message.
var sources = func() []netip.AddrPort {
	s := make([]netip.AddrPort, 16)
	for i := range s {
		s[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + 13*i)}), uint16(40000+997*i))
	}
	return s
}()

func loadInvite(tb testing.TB) []byte {
	b, err := os.ReadFile("../../sipmsg/testdata/bench/invite.sip")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// The signalling NAT tests (no SDP: sipgo has no SDP parser): Contact
// private, Via address differs, Via private, Via port differs, source
// private, Contact differs.
const tests = sipmsg.ContactPrivate | sipmsg.ViaAddrDiffers | sipmsg.ViaPrivate |
	sipmsg.ViaPortDiffers | sipmsg.SourcePrivate | sipmsg.ContactDiffers

// viaContactSipmsg: scan, NAT tests, then Via received/rport and Contact
// host:port rewrite into a reused buffer.
func viaContactSipmsg(m *sipmsg.Message, src netip.AddrPort, msg, dst []byte) ([]byte, sipmsg.NATTest, error) {
	if err := m.Parse(msg); err != nil {
		return dst, 0, err
	}
	fired, err := m.NATTest(src, tests, nil)
	if err != nil {
		return dst, 0, err
	}
	dst, err = sipmsg.AppendFix(dst[:0], m, src, &sipmsg.Fix{Via: true, Contact: sipmsg.ContactRewrite})
	return dst, fired, err
}

// viaContactSipgo: the same with sipgo: parse, the same tests on the
// parsed headers, set received/rport and the Contact host:port, serialize.
func viaContactSipgo(src netip.AddrPort, msg []byte, out *bytes.Buffer) (sipmsg.NATTest, error) {
	m, err := sip.ParseMessage(msg)
	if err != nil {
		return 0, err
	}
	req := m.(*sip.Request)
	var fired sipmsg.NATTest
	sIP := src.Addr()
	if ipaddr.IsPrivate(sIP) {
		fired |= sipmsg.SourcePrivate
	}
	via := req.Via()
	va, vErr := netip.ParseAddr(via.Host)
	if vErr != nil || va != sIP {
		fired |= sipmsg.ViaAddrDiffers
	}
	if vErr == nil && ipaddr.IsPrivate(va) {
		fired |= sipmsg.ViaPrivate
	}
	vp := via.Port
	if vp == 0 {
		vp = 5060
	}
	if vp != int(src.Port()) {
		fired |= sipmsg.ViaPortDiffers
	}
	ct := req.Contact()
	ca, cErr := netip.ParseAddr(ct.Address.Host)
	if cErr == nil && ipaddr.IsPrivate(ca) {
		fired |= sipmsg.ContactPrivate
	}
	cp := ct.Address.Port
	if cp == 0 {
		cp = 5060
	}
	if cErr != nil || ca != sIP || cp != int(src.Port()) {
		fired |= sipmsg.ContactDiffers
	}
	via.Params.Add("rport", strconv.Itoa(int(src.Port())))
	via.Params.Add("received", sIP.String())
	ct.Address.Host = sIP.String()
	ct.Address.Port = int(src.Port())
	out.Reset()
	req.StringWrite(out)
	return fired, nil
}

// floorPairs are what viaContactSipmsg changes in the INVITE, for the crude
// floor: the top Via's bare rport gets its value and received=, the
// Contact's host:port (the next 192.168.1.10:5072 after it) the source.
var floorPairs = benchfloor.Pairs(
	";rport", ";rport=40000;received=203.0.113.1",
	"192.168.1.10:5072", "203.0.113.1:40000",
)

// viaContactFloor is the crude floor: bytes.Index finds what is known to
// change, and the rest is copied; no tests, no parsing.
func viaContactFloor(msg, dst []byte) []byte {
	return benchfloor.Replace(dst[:0], msg, floorPairs)
}

// TestSameResult checks both paths find the same NAT tests and produce
// messages that carry the same Via and Contact.
func TestSameResult(t *testing.T) {
	msg := loadInvite(t)
	var m sipmsg.Message
	ours, f1, err := viaContactSipmsg(&m, src, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	f2, err := viaContactSipgo(src, msg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if f1 != f2 {
		t.Fatalf("tests differ: sipmsg %v, sipgo %v", f1, f2)
	}
	var a, b sipmsg.Message
	if err := a.Parse(ours); err != nil {
		t.Fatal(err)
	}
	if err := b.Parse(out.Bytes()); err != nil {
		t.Fatalf("sipgo output: %v\n%s", err, out.Bytes())
	}
	for _, k := range []sipmsg.HeaderKind{sipmsg.HdrVia, sipmsg.HdrContact} {
		va, _ := a.Get(k)
		vb, _ := b.Get(k)
		t.Logf("%v: sipmsg %q sipgo %q", k, va, vb)
	}
	pa, _ := a.ParseTopVia()
	pb, _ := b.ParseTopVia()
	ra, _ := pa.ReceivedAddr(a.Bytes())
	rb, _ := pb.ReceivedAddr(b.Bytes())
	if ra != rb || ra != src.Addr() {
		t.Fatalf("received differs: %v %v", ra, rb)
	}
	if floor := viaContactFloor(msg, nil); !bytes.Equal(ours, floor) {
		t.Fatalf("sipmsg output is not the input plus the floor's edits:\n%s\nfloor:\n%s", ours, floor)
	}
	// the benchmarks' sources in turn, on one Message: each output
	// carries its own source, as sipgo's does
	for _, s := range sources {
		got, _, err := viaContactSipmsg(&m, s, msg, nil)
		require.NoError(t, err)
		_, err = viaContactSipgo(s, msg, &out)
		require.NoError(t, err)
		require.NoError(t, a.Parse(got))
		require.NoError(t, b.Parse(out.Bytes()))
		for _, k := range []sipmsg.HeaderKind{sipmsg.HdrVia, sipmsg.HdrContact} {
			va, _ := a.Get(k)
			vb, _ := b.Get(k)
			require.Contains(t, string(va), s.Addr().String(), k)
			require.Contains(t, string(vb), s.Addr().String(), k)
		}
		ca, _ := a.Get(sipmsg.HdrContact)
		require.Contains(t, string(ca), s.String())
	}
}

func BenchmarkNATFix(b *testing.B) {
	msg := loadInvite(b)
	b.Run("sipmsg", func(b *testing.B) {
		var m sipmsg.Message
		dst := make([]byte, 0, 2048)
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var err error
			dst, _, err = viaContactSipmsg(&m, sources[i%len(sources)], msg, dst)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sipmsg-newbuf", func(b *testing.B) {
		// the output allocated per message: the one allocation allowed
		var m sipmsg.Message
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, _, err := viaContactSipmsg(&m, sources[i%len(sources)], msg, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("floor", func(b *testing.B) {
		dst := make([]byte, 0, 2048)
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			dst = viaContactFloor(msg, dst)
		}
	})
	b.Run("sipgo", func(b *testing.B) {
		var out bytes.Buffer
		out.Grow(2048)
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := viaContactSipgo(sources[i%len(sources)], msg, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPaired runs sipmsg, sipgo and the crude floor in alternating
// batches and reports the fastest batch of each (min ns per op), sipgo's
// time over sipmsg's (x-faster) and sipmsg's over the floor's (x-floor), so
// that load from other processes on a shared machine, which only ever
// slows a batch down, does not bias the comparison.
func BenchmarkPaired(b *testing.B) {
	msg := loadInvite(b)
	var m sipmsg.Message
	dst := make([]byte, 0, 2048)
	var out bytes.Buffer
	out.Grow(2048)
	const batch = 2000
	best := func(f func()) float64 {
		start := time.Now()
		for i := 0; i < batch; i++ {
			f()
		}
		return float64(time.Since(start).Nanoseconds()) / batch
	}
	var no, nt int // the next source of each side
	ours := func() {
		var err error
		no++
		if dst, _, err = viaContactSipmsg(&m, sources[no%len(sources)], msg, dst); err != nil {
			b.Fatal(err)
		}
	}
	theirs := func() {
		nt++
		if _, err := viaContactSipgo(sources[nt%len(sources)], msg, &out); err != nil {
			b.Fatal(err)
		}
	}
	fdst := make([]byte, 0, 2048)
	floor := func() { fdst = viaContactFloor(msg, fdst) }
	minOurs, minTheirs, minFloor := math.MaxFloat64, math.MaxFloat64, math.MaxFloat64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 3 * batch {
		minOurs = math.Min(minOurs, best(ours))
		minTheirs = math.Min(minTheirs, best(theirs))
		minFloor = math.Min(minFloor, best(floor))
	}
	b.ReportMetric(minOurs, "sipmsg-ns/op")
	b.ReportMetric(minTheirs, "sipgo-ns/op")
	b.ReportMetric(minFloor, "floor-ns/op")
	b.ReportMetric(minTheirs/minOurs, "x-faster")
	b.ReportMetric(minOurs/minFloor, "x-floor")
}
