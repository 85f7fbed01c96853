package keepalive_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/keepalive"
)

// stunServer stands in for a *nat.Client: the NAT moves the flow to a new
// port after the second keep-alive.
type stunServer struct{ calls int }

func (s *stunServer) Binding(ctx context.Context, server netip.AddrPort) (netip.AddrPort, error) {
	s.calls++
	if s.calls <= 2 {
		return netip.MustParseAddrPort("203.0.113.1:5060"), nil
	}
	return netip.MustParseAddrPort("203.0.113.1:40017"), nil
}

// A user agent keeps its UDP flow to the registrar open with STUN
// keep-alives at an interval derived from the measured binding lifetime,
// and learns that its public address changed.
func Example() {
	clock := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	k, err := keepalive.NewKeeper(keepalive.KeeperConfig{
		Kind:   keepalive.STUN,
		Binder: &stunServer{}, // a *nat.Client on the SIP socket
		Server: netip.MustParseAddrPort("203.0.113.2:5060"),
		Timing: keepalive.Timing{Lifetime: 30 * time.Second, Negotiated: 20 * time.Second},
		Clock:  clock,
		Rand:   rand.NewPCG(1, 2),
		OnEvent: func(e keepalive.Event) {
			fmt.Println("event:", e) // re-register with the new address
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("interval:", k.Interval())
	k.Start()
	defer k.Stop()
	clock.Advance(time.Minute)
	fmt.Println("mapping:", k.Mapping())
	// Output:
	// interval: 15s
	// event: mapping-changed 203.0.113.1:5060 -> 203.0.113.1:40017
	// mapping: 203.0.113.1:40017
}

// A registrar pings its NATed contacts with OPTIONS and learns which one
// stopped answering.
func ExampleScheduler() {
	clock := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	alive := netip.MustParseAddrPort("203.0.113.1:5060")
	gone := netip.MustParseAddrPort("198.51.100.7:5060")
	var s *keepalive.Scheduler
	s, err := keepalive.NewScheduler(keepalive.SchedulerConfig{
		Clock:     clock,
		MaxMisses: 2,
		Send: keepalive.SenderFunc(func(p keepalive.Ping) error {
			// Build an OPTIONS (sipmsg.AppendOptions) and write it to p.Addr
			// from the socket p.Socket; here only alive answers.
			if p.Addr == alive {
				s.Answered(p.Addr)
			}
			return nil
		}),
		OnEvent: func(e keepalive.ContactEvent) {
			fmt.Println(e.Kind, e.Addr, "after", e.Misses, "misses")
			s.Remove(e.Addr)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range []netip.AddrPort{alive, gone} {
		_ = s.Set(keepalive.Contact{Addr: a, Interval: 30 * time.Second, Kind: keepalive.PingOptions})
	}
	clock.Advance(2 * time.Minute)
	fmt.Println("contacts:", s.Len())
	// Output:
	// unreachable 198.51.100.7:5060 after 2 misses
	// contacts: 1
}

// Timing derives the keep-alive interval from what is known about the flow.
func ExampleTiming_Base() {
	for _, t := range []keepalive.Timing{
		{},                           // nothing known: the datagram default
		{Lifetime: 30 * time.Second}, // nat measured a 30 s binding: half of it
		{Lifetime: 30 * time.Second, Margin: 5 * time.Second},
		{Lifetime: 120 * time.Second, Negotiated: 40 * time.Second}, // Via: ...;keep=40
	} {
		fmt.Println(t.Base(false))
	}
	// Output:
	// 25s
	// 15s
	// 25s
	// 40s
}
