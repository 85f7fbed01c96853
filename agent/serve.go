package agent

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/sipnat/sipnat/internal/callerconn"
)

// ServeSIP is the SIP socket's read loop for a UA that has none of its own:
// it reads Config.SIP until ctx ends or the socket fails, hands every
// packet to HandlePacket first and what the agent leaves to sip (b is only
// valid during the call; a nil sip drops it). The socket stays the
// caller's: ServeSIP never closes it and leaves no read deadline on it. It
// returns nil when ctx ends, else the read error. A stack that reads the
// socket itself calls HandlePacket from its own loop instead.
func (a *Agent) ServeSIP(ctx context.Context, sip func(b []byte, from netip.AddrPort)) error {
	if err := callerconn.Serve(ctx, a.cfg.SIP, 65535, callerconn.Claim(a.HandlePacket, sip)); err != nil {
		return fmt.Errorf("agent: read SIP socket %s: %w", a.local, err)
	}
	return nil
}

// ServeMedia is ServeSIP for media socket i (Config.Media[i]): every
// packet goes to HandleMediaPacket first, and the media it gives back
// (direct RTP and RTCP, the relay's payload with the peer it came from) to
// media. It fails at once for an i the Config has no socket for.
func (a *Agent) ServeMedia(ctx context.Context, i int, media func(b []byte, from netip.AddrPort)) error {
	if i < 0 || i >= len(a.cfg.Media) {
		return fmt.Errorf("%w: no media socket %d", ErrConfig, i)
	}
	err := callerconn.Serve(ctx, a.cfg.Media[i], 65535, func(b []byte, from netip.AddrPort) {
		if p, src := a.HandleMediaPacket(i, b, from); p != nil && media != nil {
			media(p, src)
		}
	})
	if err != nil {
		return fmt.Errorf("agent: read media socket %d: %w", i, err)
	}
	return nil
}
