package keepalive

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/sipmsg"
)

// TestLabProxy: eim-apdf, 5 s timeout. A registrar in the WAN (our own, on
// 203.0.113.2:5060) pings the 50 UAs that registered through the NAT with
// SIP OPTIONS every 2 s from one Scheduler. After 15 s of idle every UA
// still receives requests from the registrar, but for the control UA the
// registrar does not ping; the UA whose socket was closed is reported.
// Every fifth UA gets plain UDP pings (CRLF CRLF, no answer) instead.
func TestLabProxy(t *testing.T) {
	t.Parallel()
	const n = 50
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, Timeout: labTimeout})
	regAddr := netip.AddrPortFrom(netlab.Server1, 5060)
	conn := lab.ListenUDP(netlab.WAN, regAddr)

	var buf []byte
	send := SenderFunc(func(p Ping) error {
		if p.Kind == PingUDP {
			_, err := conn.WriteToUDPAddrPort([]byte("\r\n\r\n"), p.Addr)
			return err
		}
		buf = sipmsg.AppendOptions(buf[:0], sipmsg.OptionsRequest{
			RequestURI: "sip:" + p.Addr.String(),
			From:       "sip:natping@" + netlab.Server1.String(),
			SentBy:     regAddr,
			Branch:     fmt.Sprintf("np%d", p.Seq),
			CallID:     fmt.Sprintf("natping-%d", p.Seq),
			CSeq:       p.Seq,
		})
		_, err := conn.WriteToUDPAddrPort(buf, p.Addr)
		return err
	})
	var mu sync.Mutex
	var events []ContactEvent
	sched, err := NewScheduler(SchedulerConfig{Send: send, MaxMisses: 2, OnEvent: func(e ContactEvent) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	require.NoError(t, err)
	t.Cleanup(sched.Stop)

	// The registrar: REGISTER from a UA makes it a contact (but for "ctl"),
	// any response is an answer.
	go func() {
		b := make([]byte, 65536)
		for {
			m, from, err := conn.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			msg := string(b[:m])
			switch {
			case strings.HasPrefix(msg, "SIP/2.0 "):
				sched.Answered(from)
			case strings.HasPrefix(msg, "REGISTER "):
				if !strings.Contains(headerValue(msg, "From"), "sip:ctl@") {
					kind := PingOptions
					if from.Port()%5 == 4 { // every fifth UA gets nathelper's plain UDP ping
						kind = PingUDP
					}
					if err := sched.Set(Contact{Addr: from, Interval: 2 * time.Second, Kind: kind}); err != nil {
						t.Errorf("Set %v: %v", from, err)
					}
				}
				_, _ = conn.WriteToUDPAddrPort(okResponse(msg), from)
			}
		}
	}()

	uas := make([]*labUA, n)
	for i := range uas {
		uas[i] = newUDPUA(t, lab, fmt.Sprintf("ua%d", i), uint16(6000+i))
	}
	ctl := newUDPUA(t, lab, "ctl", 6100)
	for _, u := range append(uas, ctl) {
		u.Register()
	}
	require.Equal(t, n, sched.Len())
	stopped := uas[7]
	stoppedAddr := netip.AddrPortFrom(netlab.Public, stopped.local.Port())
	require.NoError(t, stopped.udp.Close())

	time.Sleep(15 * time.Second) // idle three times the binding timeout

	mu.Lock()
	got := append([]ContactEvent(nil), events...)
	mu.Unlock()
	require.Equal(t, []ContactEvent{{Kind: Unreachable, Addr: stoppedAddr, Misses: 2}}, got, "only the stopped UA is reported")
	t.Logf("scheduler: %d contacts, %d pings", sched.Len(), sched.Pings())

	// Every other UA can still be reached at its registered address.
	probe := func(u *labUA) string {
		id := "reach-" + u.user
		msg := fmt.Appendf(nil, "OPTIONS sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s\r\n"+
			"From: <sip:registrar@%s>;tag=r\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
			u.user, u.local, regAddr, id, netlab.Server1, u.user, netlab.Server1, id)
		_, err := conn.WriteToUDPAddrPort(msg, netip.AddrPortFrom(netlab.Public, u.local.Port()))
		require.NoError(t, err)
		return id
	}
	ids := make([]string, n)
	for i, u := range uas {
		if u != stopped {
			ids[i] = probe(u)
		}
	}
	for i, u := range uas {
		if u != stopped {
			require.True(t, u.poll(3*time.Second, func() bool { return u.Reached(ids[i]) }), "%s unreachable after idle", u.user)
		}
	}
	id := probe(ctl)
	require.False(t, ctl.poll(2*time.Second, func() bool { return ctl.Reached(id) }), "control UA reachable without pings")
}
