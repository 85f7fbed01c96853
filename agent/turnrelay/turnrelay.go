package turnrelay

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/turn"
)

// New returns the agent's relay maker for the TURN server of cfg (Server,
// Username, Password; Clock and Logger as the UA wants): on each media
// socket a turn.Client over UDP that the agent's read loop feeds
// (CallerReads), keeps its flow open at the keep-alive interval the agent's
// plan measured, and asks for a mobility ticket (RFC 8016) so a rebooted
// NAT keeps the relayed address. The other fields of cfg keep their
// meaning; Transport must be UDP.
func New(cfg turn.Config) agent.RelayMaker {
	return func(conn net.PacketConn, keepAlive time.Duration, onEvent func(agent.RelayEvent)) (agent.MediaRelay, error) {
		c := cfg
		c.CallerReads, c.KeepAlive, c.Mobility = true, keepAlive, true
		c.OnEvent = func(e turn.Event) {
			switch e.Kind {
			case turn.EventLost:
				onEvent(agent.RelayEvent{Lost: true, Previous: e.Previous, Reason: e.String()})
			case turn.EventRecovered:
				onEvent(agent.RelayEvent{Relayed: e.Relayed, Previous: e.Previous, Reason: e.String()})
			}
		}
		tc, err := turn.New(conn, c)
		if err != nil {
			return nil, err
		}
		return relay{tc}, nil
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
