package keepalive

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sipnat/sipnat/clock"
)

// benchContacts is how many contacts the scheduler benchmarks hold.
const benchContacts = 1_000_000

func benchAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%60000))
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkContacts schedules 1,000,000 contacts and pings them: "wheel" is
// the Scheduler (one clock timer, a slab and a hashed timing wheel),
// "afterfunc" the baseline a Go programmer would write first, one
// time.AfterFunc per contact that re-arms itself. bytes/contact is the live
// heap the contacts add; ns/op and ns/ping are wall time per ping,
// cpu-ns/ping the process CPU time (user+system, all cores) per ping.
//
//	go test -run='^$' -bench=Contacts -benchtime=3000000x ./keepalive
func BenchmarkContacts(b *testing.B) {
	b.Run("wheel", benchWheel)
	b.Run("afterfunc", benchAfterFunc)
}

func benchWheel(b *testing.B) {
	clk := clock.NewFake(epoch)
	var sent uint64
	before := heapInUse()
	s, err := NewScheduler(SchedulerConfig{
		Clock: clk, Tick: 10 * time.Millisecond, Capacity: benchContacts, Rand: rand.NewPCG(1, 1),
		MaxRate: 2 * benchContacts, // the comparison is uncapped
		Send:    SenderFunc(func(Ping) error { sent++; return nil }),
	})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < benchContacts; i++ {
		if err := s.Set(Contact{Addr: benchAddr(i), Interval: time.Second, Kind: PingOptions}); err != nil {
			b.Fatal(err)
		}
	}
	perContact := float64(heapInUse()-before) / benchContacts
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	for sent < uint64(b.N) {
		clk.Advance(10 * time.Millisecond)
	}
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	b.StopTimer()
	b.ReportMetric(perContact, "bytes/contact")
	b.ReportMetric(float64(wall.Nanoseconds())/float64(sent), "ns/ping")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(sent), "cpu-ns/ping")
	if s.Len() != benchContacts {
		b.Fatal("lost contacts")
	}
	runtime.KeepAlive(s)
	s.Stop()
}

type afContact struct {
	addr   netip.AddrPort
	misses int
	t      *time.Timer
}

func benchAfterFunc(b *testing.B) {
	const interval = 100 * time.Millisecond // due faster than any host can fire 1M timers: measures throughput
	var sent atomic.Uint64
	var stop atomic.Bool
	target := uint64(b.N)
	done := make(chan struct{})
	var once sync.Once
	send := func(netip.AddrPort) {
		if sent.Add(1) >= target {
			stop.Store(true) // the backlog of fired timers returns at once
			once.Do(func() { close(done) })
		}
	}
	before := heapInUse()
	contacts := make([]*afContact, benchContacts)
	stop.Store(true) // hold pings until the heap is measured
	for i := range contacts {
		c := &afContact{addr: benchAddr(i)}
		c.t = time.AfterFunc(time.Hour, func() {
			if stop.Load() {
				return
			}
			c.misses++ // the state a natping keeps: unanswered pings
			send(c.addr)
			c.t.Reset(interval)
		})
		contacts[i] = c
	}
	perContact := float64(heapInUse()-before) / benchContacts
	b.ReportAllocs()
	stop.Store(false)
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	for i, c := range contacts {
		c.t.Reset(time.Duration(i%100) * time.Millisecond)
	}
	<-done
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	b.StopTimer()
	n := sent.Load()
	b.ReportMetric(perContact, "bytes/contact")
	b.ReportMetric(float64(wall.Nanoseconds())/float64(n), "ns/ping")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/ping")
	for _, c := range contacts {
		c.t.Stop()
	}
}
