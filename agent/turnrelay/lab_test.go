package turnrelay_test

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/agent/turnrelay"
	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/sipmsg"
	"github.com/sipnat/sipnat/turn"
)

// TestLabRelay: behind a symmetric NAT with no port mapping the agent
// decides Relay, allocates on the lab's TURN relay (coturn), names the
// relayed address for the media socket, and media goes both ways through
// it: SendMedia out as ChannelData, HandleMediaPacket hands the peer's RTP
// back unwrapped with the peer as its source. Close deletes the
// allocation and leaves the sockets open.
func TestLabRelay(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.APDM, Coturn: true, TURN: &netlab.TURN{}})
	client := lab.Truth().Client
	sip := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(client, 5062))
	rtp := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(client, 40000))
	peerAddr := netip.AddrPortFrom(netlab.Peer, 7000)
	peer := lab.ListenUDP(netlab.WAN, peerAddr)

	a, err := agent.New(agent.Config{SIP: sip, Media: []net.PacketConn{rtp}, Registrar: netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort),
		STUN: []netip.AddrPort{netip.AddrPortFrom(netlab.Server1, netlab.CoturnPort)}, Disable: agent.PortMapping,
		NewRelay: turnrelay.New(turn.Config{Server: netip.AddrPortFrom(netlab.Server1, netlab.TURNPort),
			Username: netlab.TURNUser, Password: netlab.TURNPassword}),
		ListenPacket: lab.ListenPacket(netlab.LAN)})
	require.NoError(t, err)
	netlab.ReadLoop(t, sip, func(b []byte, from netip.AddrPort) { a.HandlePacket(b, from) })
	var in atomic.Int64
	var src atomic.Value
	netlab.ReadLoop(t, rtp, func(b []byte, from netip.AddrPort) {
		if m, s := a.HandleMediaPacket(0, b, from); len(m) >= 12 && m[0]>>6 == 2 {
			in.Add(1)
			src.Store(s)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := a.Start(ctx)
	require.NoError(t, err)
	require.Equal(t, agent.Relay, p.Decision, "%s", p)
	require.True(t, p.TwoWayAudio.Works, "%s", p)
	require.Equal(t, agent.FromRelay, p.Media[0].From)
	relayed := p.Media[0].Public
	require.Equal(t, netlab.Server1, relayed.Addr())
	require.Equal(t, []netip.AddrPort{relayed}, p.Relay.Allocations)
	body := []byte("v=0\r\nc=IN IP4 192.168.1.10\r\nm=audio 40000 RTP/AVP 0\r\n")
	sdp, err := a.AppendSDP(nil, body)
	require.NoError(t, err)
	require.Contains(t, string(sdp), "c=IN IP4 203.0.113.2\r\nm=audio "+itoa(relayed.Port()), "the SDP names the relayed address")

	mediaBothWays(ctx, t, a, peer, peerAddr, relayed, &in, &src)
	require.NoError(t, a.Close())
	_, err = rtp.WriteToUDPAddrPort([]byte("x"), peerAddr)
	require.NoError(t, err, "the media socket stays open")
}

func itoa(p uint16) string { return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[8:] }

// mediaBothWays has the agent's media socket 0 and a peer on the WAN
// exchange 20 RTP packets each way through the relayed address: the UA's
// media handler (which counts into in and stores the source in src) must
// get them from the peer, the peer from the relayed address.
func mediaBothWays(ctx context.Context, t *testing.T, a *agent.Agent, peer *net.UDPConn, peerAddr, relayed netip.AddrPort, in *atomic.Int64, src *atomic.Value) {
	t.Helper()
	require.NoError(t, a.MediaPeer(ctx, 0, peerAddr))
	pkt := make([]byte, 172)
	pkt[0] = 0x80
	var out atomic.Int64
	var from atomic.Value
	netlab.ReadLoop(t, peer, func(b []byte, f netip.AddrPort) { out.Add(1); from.Store(f) })
	for i := 0; i < 20; i++ {
		require.NoError(t, a.SendMedia(0, pkt, peerAddr))
		_, err := peer.WriteToUDPAddrPort(pkt, relayed)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return in.Load() >= 18 && out.Load() >= 18 }, 5*time.Second, 20*time.Millisecond,
		"in %d, out %d", in.Load(), out.Load())
	require.Equal(t, peerAddr, src.Load(), "relayed media comes with the peer as its source")
	require.Equal(t, relayed, from.Load(), "the peer hears the relayed address")
}

// TestLabRelayOverStream: behind a router that drops UDP (TCP
// masqueraded, and forgotten after 5 s idle) the agent finds UDP blocked
// and reaches the lab's coturn over TCP (chosen by itself) or TLS (asked
// for, certificate from the lab's CA) with long-term credentials; the
// relayed side is UDP. After idling past the router's TCP timeout (the
// relay's stream is kept open every 2 s) media goes both ways: SendMedia
// out over the stream, the peer's RTP back through OnRelayedMedia.
func TestLabRelayOverStream(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.Blocked, TCPTimeout: 5 * time.Second, Coturn: true, TURN: &netlab.TURN{TLS: true}})
	t.Run("TCP", func(t *testing.T) {
		t.Parallel()
		relayOverStream(t, lab, agent.RelayAuto, sipmsg.TransportUnknown, sipmsg.TCP, "UDP is blocked")
	})
	t.Run("TLS", func(t *testing.T) {
		t.Parallel()
		relayOverStream(t, lab, agent.RelayAuto, sipmsg.TLS, sipmsg.TLS, "UDP is blocked")
	})
}

// TestLabForcedRelayOverTCP: where UDP works (an eim-apdf router), a
// relay the configuration forces over TCP is reached over TCP all the
// same, and media goes both ways through it after idling past the
// router's timeouts.
func TestLabForcedRelayOverTCP(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{Kind: netlab.EIMAPDF, Timeout: 5 * time.Second, TCPTimeout: 5 * time.Second, Coturn: true, TURN: &netlab.TURN{}})
	relayOverStream(t, lab, agent.RelayForce, sipmsg.TCP, sipmsg.TCP, "the configuration forces it")
}

// relayOverStream runs an agent in lab's LAN whose relay is reached with
// asked (want is what the plan must say, why its reason), idles past the
// router's 5 s timeouts and exchanges media with a peer on the WAN
// through the relay.
func relayOverStream(t *testing.T, lab *netlab.Lab, mode agent.RelayMode, asked, want sipmsg.Transport, why string) {
	port := uint16(netlab.TURNPort)
	if want == sipmsg.TLS {
		port = netlab.TURNTLSPort
	}
	client := lab.Truth().Client
	sip := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(client, 5062+port-netlab.TURNPort))
	rtp := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(client, 40000+port-netlab.TURNPort))
	peerAddr := netip.AddrPortFrom(netlab.Peer, 7000+port-netlab.TURNPort)
	peer := lab.ListenUDP(netlab.WAN, peerAddr)
	dial := lab.DialContext(netlab.LAN)
	if want == sipmsg.TLS {
		dial = lab.DialTLS(netlab.LAN, netlab.Server1.String())
	}
	var in atomic.Int64
	var src atomic.Value
	a, err := agent.New(agent.Config{SIP: sip, Media: []net.PacketConn{rtp}, Registrar: netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort),
		STUN: []netip.AddrPort{netip.AddrPortFrom(netlab.Server1, netlab.CoturnPort)}, Disable: agent.PortMapping,
		NewRelay: turnrelay.New(turn.Config{Server: netip.AddrPortFrom(netlab.Server1, port),
			Username: netlab.TURNUser, Password: netlab.TURNPassword, DialContext: dial}),
		Relay: mode, RelayTransport: asked, StreamKeepAlive: 2 * time.Second,
		OnRelayedMedia: func(i int, b []byte, peer netip.AddrPort) {
			if i == 0 && len(b) >= 12 && b[0]>>6 == 2 {
				in.Add(1)
				src.Store(peer)
			}
		},
		ListenPacket: lab.ListenPacket(netlab.LAN)})
	require.NoError(t, err)
	netlab.ReadLoop(t, sip, func(b []byte, from netip.AddrPort) { a.HandlePacket(b, from) })
	netlab.ReadLoop(t, rtp, func(b []byte, from netip.AddrPort) { a.HandleMediaPacket(0, b, from) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := a.Start(ctx)
	require.NoError(t, err)
	defer a.Close()
	require.Equal(t, map[agent.RelayMode]agent.Decision{agent.RelayAuto: agent.Relay, agent.RelayForce: agent.ForceRelay}[mode], p.Decision, "%s", p)
	require.Equal(t, want, p.Relay.Transport, "%s", p)
	require.True(t, p.TwoWayAudio.Works, "%s", p)
	require.Contains(t, p.TwoWayAudio.Reason, "over "+want.String()+" ("+why, "%s", p)
	require.Equal(t, agent.FromRelay, p.Media[0].From)
	relayed := p.Media[0].Public
	require.Equal(t, netlab.Server1, relayed.Addr())
	js, err := json.Marshal(p)
	require.NoError(t, err)
	require.Contains(t, string(js), `"transport":"`+strings.ToLower(want.String())+`"`)

	time.Sleep(6 * time.Second) // idle past the router's 5 s timeouts: only the relay's keep-alives hold the stream
	mediaBothWays(ctx, t, a, peer, peerAddr, relayed, &in, &src)
}
