package turnrelay

import (
	"context"
	"net/netip"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/sipmsg"
	"github.com/sipnat/sipnat/turn"
)

// New returns the agent's relay maker for the TURN server of cfg (Server,
// Username, Password; Clock and Logger as the UA wants). Over UDP it makes
// a turn.Client on each media socket that the agent's read loop feeds
// (CallerReads) and that asks for a mobility ticket (RFC 8016), so a
// rebooted NAT keeps the relayed address. Over TCP or TLS, which the agent
// picks when UDP is blocked or agent.Config.RelayTransport asks, it dials
// the server (turn.Dial, with cfg.DialContext: for TLS that must make TLS
// connections, e.g. (&tls.Dialer{Config: c}).DialContext, and cfg.Server
// is then the server's TLS port) and hands relayed media to the agent's
// OnRelayedMedia. Either keeps its flow open at the interval the agent
// asks for. The agent's choice overrides cfg.Transport; the other fields
// of cfg keep their meaning.
func New(cfg turn.Config) agent.RelayMaker {
	return func(ctx context.Context, r agent.RelayRequest) (agent.MediaRelay, error) {
		c := cfg
		c.Transport, c.KeepAlive = r.Transport, r.KeepAlive
		c.OnEvent = func(e turn.Event) {
			switch e.Kind {
			case turn.EventLost:
				r.OnEvent(agent.RelayEvent{Lost: true, Previous: e.Previous, Reason: e.String()})
			case turn.EventRecovered:
				r.OnEvent(agent.RelayEvent{Relayed: e.Relayed, Previous: e.Previous, Reason: e.String()})
			}
		}
		if r.Transport == sipmsg.UDP {
			c.CallerReads, c.Mobility = true, true
			tc, err := turn.New(r.Media, c)
			if err != nil {
				return nil, err
			}
			return relay{tc}, nil
		}
		c.OnData = r.OnMedia
		tc, err := turn.Dial(ctx, c)
		if err != nil {
			return nil, err
		}
		return streamRelay{relay{tc}}, nil
	}
}

// relay is a turn.Client as an agent.MediaRelay.
type relay struct{ *turn.Client }

func (r relay) Allocate(ctx context.Context) (netip.AddrPort, error) {
	a, err := r.Client.Allocate(ctx)
	return a.Relayed, err
}

func (r relay) Permit(ctx context.Context, peer netip.AddrPort) error {
	return r.Client.Permit(ctx, peer)
}

// streamRelay is a relay on its own stream: nothing read from the media
// socket is its.
type streamRelay struct{ relay }

func (streamRelay) HandlePacket([]byte, netip.AddrPort) ([]byte, netip.AddrPort, bool) {
	return nil, netip.AddrPort{}, false
}
