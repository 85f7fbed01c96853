package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	_ "embed"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/ipaddr"
	"github.com/stretchr/testify/require"
)

//go:embed uas.xml
var uasScenario string

// ipv6Case is one row of the IPv6 column of the matrix.
type ipv6Case struct {
	name    string
	mode    netlab.IPv6Mode
	pinhole bool // miniupnpd and the phone's port mappings (PCP/IGD:2 pinholes)
	dial    bool // the phone calls the IPv4 peer instead of being called
}

// TestMatrixIPv6: the softphone behind the lab's RFC 6092 IPv6 firewall
// registers over IPv6 to kamailio, idles past the firewall's 5 s UDP
// timeout, and a caller (sipp over IPv6) gets through with two-way audio:
// once kept open by keep-alives alone (at half the firewall timeout the
// phone measured), once through a PCP pinhole with no keep-alive at all.
// And an IPv6-only phone behind NAT64/DNS64 finds the NAT64 prefix,
// registers through the NAT64 to the IPv4-only kamailio, and is called by
// an IPv4-only sipp, with two-way audio.
func TestMatrixIPv6(t *testing.T) {
	t.Parallel()
	netlab.RequireTools(t, "sipp", "kamailio", "turnserver", "miniupnpd", "nft", "tayga", "unbound")
	var mu sync.Mutex
	var rows []string
	t.Cleanup(func() {
		sort.Strings(rows)
		t.Log("\n| IPv6 | strategy | keep-alive | registered | incoming call | RTP in | RTP out | two-way audio |\n|---|---|---|---|---|---|---|---|\n" + strings.Join(rows, ""))
	})
	for _, c := range []ipv6Case{
		{name: "firewall, keep-alives", mode: netlab.IPv6Firewall},
		{name: "firewall, pinhole", mode: netlab.IPv6Firewall, pinhole: true},
		{name: "NAT64, IPv4 caller", mode: netlab.IPv6NAT64},
		{name: "NAT64, IPv4 callee", mode: netlab.IPv6NAT64, dial: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			row := runIPv6Case(t, c)
			mu.Lock()
			rows = append(rows, row)
			mu.Unlock()
		})
	}
}

func runIPv6Case(t *testing.T, c ipv6Case) string {
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, IPv6: c.mode, Timeout: 5 * time.Second,
		UPnP: c.pinhole, KamailioAuth: true, Coturn: true})
	var disable agent.Mechanism
	if !c.pinhole {
		disable = agent.PortMapping
	}
	cfg := Config{Disable: disable,
		Registrar: netip.AddrPortFrom(netlab.Server1V6, netlab.KamailioPort), User: "alice", Password: netlab.KamailioPassword,
		STUN:        []netip.AddrPort{netip.AddrPortFrom(netlab.Server1V6, netlab.CoturnPort)},
		LifetimeMax: 12 * time.Second,
		Gateway:     netlab.RouterLAN6, DialContext: lab.DialContext(netlab.LAN), ListenPacket: lab.ListenPacket(netlab.LAN),
	}
	if c.mode == netlab.IPv6NAT64 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n64, err := discovery.DetectNAT64(ctx, discovery.NAT64Config{Resolver: lab.Resolver(netlab.LAN)})
		cancel()
		require.NoError(t, err)
		cfg.NAT64 = n64.Prefixes[0]
		reg, err := ipaddr.SynthesizeNAT64(cfg.NAT64, netlab.Server1)
		require.NoError(t, err)
		cfg.Registrar = netip.AddrPortFrom(reg, netlab.KamailioPort)
		cfg.STUN = []netip.AddrPort{netip.AddrPortFrom(reg, netlab.CoturnPort)}
		cfg.Domain = netlab.Server1.String()
	}
	phone, out := startPhoneWith(t, lab, netlab.Client6, cfg)
	s := phone.Plan()
	require.True(t, s.IncomingCalls.Works, "%s", s)
	require.True(t, s.TwoWayAudio.Works, "%s", s)
	switch {
	case c.mode == netlab.IPv6NAT64:
		require.Equal(t, netlab.Public, s.Contact.Addr(), "the IPv4 address the NAT64 gives, for the IPv4 side: %s", s)
		require.Equal(t, netlab.Public, s.Media[0].Public.Addr(), "%s", s)
	case c.pinhole:
		require.Equal(t, agent.FromMapping, s.ContactFrom, "%s", s)
		require.Zero(t, s.KeepAlive.Interval, "a pinhole needs no keep-alive: %s", s)
	default:
		require.Equal(t, netlab.Client6, s.Contact.Addr(), "%s", s)
		require.Positive(t, s.KeepAlive.Interval, "%s", s)
		require.Less(t, s.KeepAlive.Interval, 5*time.Second, "below the firewall's timeout: %s", s)
	}
	dump, err := lab.KamailioRPC("ul.dump")
	require.NoError(t, err)
	require.Contains(t, dump, "Address: sip:alice@"+sipHost(s.Contact))

	time.Sleep(6 * time.Second) // idle past the firewall's 5 s UDP timeout: only keep-alives or a pinhole keep it open

	var rtpOut int64
	if c.dial {
		rtpOut, err = sippAnswer(t, lab, phone)
		st := phone.Stats()
		require.NoError(t, err, "outgoing call: phone %+v\n%s", st, out.String())
		twoWay := st.RTPIn >= 50 && rtpOut >= 50
		require.True(t, twoWay, "two-way audio: RTP in %d, out %d", st.RTPIn, rtpOut)
		return fmt.Sprintf("| %s | %s | %s | %s | %s | %d | %d | %s |\n", c.name, s.ContactFrom, s.KeepAlive.Interval, yes(true), "outgoing: yes", st.RTPIn, rtpOut, yes(twoWay))
	}
	if c.mode == netlab.IPv6NAT64 {
		rtpOut, err = sippCall(t, lab) // sipp and kamailio are IPv4-only
	} else {
		rtpOut, err = sippCall6(t, lab)
	}
	st := phone.Stats()
	incoming := err == nil && st.Calls >= 1 && st.Ended >= 1
	twoWay := st.RTPIn >= 50 && rtpOut >= 50
	require.True(t, incoming, "incoming call: %v, phone %+v\n%s", err, st, out.String())
	require.True(t, twoWay, "two-way audio: RTP in %d, out %d", st.RTPIn, rtpOut)
	ka := "none"
	if s.KeepAlive.Interval > 0 {
		ka = s.KeepAlive.Interval.String()
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %d | %d | %s |\n", c.name, s.ContactFrom, ka, yes(true), yes(incoming), st.RTPIn, rtpOut, yes(twoWay))
}

// sipHost is ap as a SIP URI host:port ([v6]:port).
func sipHost(ap netip.AddrPort) string { return ap.String() }

// startPhoneWith runs a softphone on client's ports 5062/40000 in the LAN
// with cfg and waits for its first registration.
func startPhoneWith(t *testing.T, lab *netlab.Lab, client netip.Addr, cfg Config) (*Phone, *netlab.Output) {
	sip := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(client, 5062))
	rtp := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(client, 40000))
	out := &netlab.Output{}
	cfg.Out = out
	ctx, cancel := context.WithCancel(context.Background())
	phone, err := NewPhone(sip, rtp, cfg)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- phone.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		t.Logf("softphone said:\n%s", out.String())
	})
	select {
	case <-phone.Registered():
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("phone stopped before registering: %v\n%s", err, out.String())
	case <-time.After(45 * time.Second):
		t.Fatalf("not registered after 45 s\n%s", out.String())
	}
	return phone, out
}

// sippCall6 has sipp on the WAN's IPv6 peer address call alice through
// kamailio over IPv6, stream 2.5 s of PCMU and hang up. It returns how many
// RTP packets reached sipp's media port, and sipp's error.
func sippCall6(_ *testing.T, lab *netlab.Lab) (int64, error) {
	return lab.SippCall("alice", netlab.Peer6, netlab.Server1V6)
}

// sippAnswer runs sipp as an IPv4-only callee on the WAN peer
// (198.51.100.2:5080, media port 6000): sippAnswerAt.
func sippAnswer(t *testing.T, lab *netlab.Lab, phone *Phone) (int64, error) {
	return sippAnswerAt(t, lab, phone, netlab.Peer)
}

// sippAnswerAt runs sipp as a callee on the WAN peer address peer (port
// 5080, media port 6000, one family only), has the phone dial it through
// kamailio and talk for 2.5 s, and returns how many RTP packets reached
// sipp's media port at peer.
func sippAnswerAt(t *testing.T, lab *netlab.Lab, phone *Phone, peer netip.Addr) (int64, error) {
	received := lab.CountUDP(netlab.WAN, peer, "6000")
	require.NoError(t, os.WriteFile(filepath.Join(lab.Dir(), "uas.xml"), []byte(uasScenario), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(lab.Dir(), "audio.ulaw"), make([]byte, 8000*3), 0o644))
	cmd := lab.Command(netlab.WAN, "timeout", "40", "sipp", "-sf", "uas.xml", "-i", peer.String(), "-p", "5080",
		"-mi", peer.String(), "-mp", "6000", "-m", "1", "-nostdin", "-timeout", "35s", "-timeout_error")
	cmd.Dir = lab.Dir()
	var sippOut netlab.Output
	cmd.Stdout, cmd.Stderr = &sippOut, &sippOut
	require.NoError(t, cmd.Start())
	sippDone := make(chan error, 1)
	go func() { sippDone <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for { // until sipp listens on 5080
		o, _ := lab.Command(netlab.WAN, "ss", "-Hlun", "sport = :5080").CombinedOutput()
		if strings.Contains(string(o), peer.String()) {
			break
		}
		require.True(t, time.Now().Before(deadline), "sipp does not listen on 5080")
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := phone.Dial(ctx, "sip:bob@"+netip.AddrPortFrom(peer, 5080).String(), 2500*time.Millisecond)
	if err != nil {
		return received(), err
	}
	select {
	case err = <-sippDone:
		if err != nil {
			err = fmt.Errorf("sipp: %w\n%s", err, tail(sippOut.String()))
		}
	case <-time.After(10 * time.Second):
		err = fmt.Errorf("sipp did not end after the BYE\n%s", tail(sippOut.String()))
	}
	return received(), err
}
