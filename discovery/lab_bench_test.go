package discovery

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/sipnat/sipnat/internal/netlab"
)

// BenchmarkLabTimeToMapping measures, on the same miniupnpd, the time from
// nothing (no cached probe, a new Mapper or a new process) to a mapping the
// gateway has granted: the Mapper over each protocol and over "whatever
// the gateway speaks", against `upnpc -i -a` and `natpmpc -a`. Deletion is
// not timed.
//
//	SIPNAT_LAB=require go test -run '^$' -bench LabTimeToMapping -benchtime 10x ./discovery
func BenchmarkLabTimeToMapping(b *testing.B) {
	lab := netlab.New(b, netlab.Config{Kind: netlab.EIMAPDF, UPnP: true})
	port := 50000
	next := func() string { port++; return strconv.Itoa(port) }
	mapper := func(protos ...Protocol) func(b *testing.B) {
		return func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p, _ := strconv.Atoi(next())
				b.StartTimer()
				m := NewMapper(labConfig(lab, protos...))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				mp, err := m.Map(ctx, "udp", uint16(p))
				b.StopTimer()
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				if len(protos) == 1 && mp.Protocol != protos[0] {
					b.Fatalf("mapped via %s", mp.Protocol)
				}
				if err := m.Close(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	command := func(add func(p string) []string, del func(p string) []string) func(b *testing.B) {
		return func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p := next()
				a := add(p)
				cmd := lab.Command(netlab.LAN, a[0], a[1:]...)
				b.StartTimer()
				out, err := cmd.CombinedOutput()
				b.StopTimer()
				if err != nil {
					b.Fatalf("%v: %v: %s", a, err, out)
				}
				d := del(p)
				if out, err := lab.Command(netlab.LAN, d[0], d[1:]...).CombinedOutput(); err != nil {
					b.Fatalf("%v: %v: %s", d, err, out)
				}
			}
		}
	}
	gw := netlab.RouterLAN.String()
	b.StopTimer()
	b.Run("sipnat-auto", mapper())
	b.Run("sipnat-pcp", mapper(ProtoPCP))
	b.Run("sipnat-natpmp", mapper(ProtoNATPMP))
	b.Run("sipnat-upnp", mapper(ProtoUPnP))
	b.Run("natpmpc-a", command(
		func(p string) []string { return []string{"natpmpc", "-g", gw, "-a", p, p, "udp", "3600"} },
		func(p string) []string { return []string{"natpmpc", "-g", gw, "-a", "0", p, "udp", "0"} }))
	b.Run("upnpc-i-a", command(
		func(p string) []string { return []string{"upnpc", "-i", "-a", netlab.Client.String(), p, p, "UDP"} },
		func(p string) []string { return []string{"upnpc", "-i", "-d", p, "UDP"} }))
}
