package nat

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/internal/callerconn"
)

// ErrSharedSocket means that packets sent to a socket did not reach the
// reader the STUN client expected: another goroutine (a SIP stack's read
// loop) reads the socket and takes the STUN answers, or the caller's read
// loop does not hand packets to Client.HandlePacket.
var ErrSharedSocket = errors.New("nat: STUN answers on this socket do not reach the STUN client")

// CheckDelivery sends a STUN Binding request from the client's socket to
// the socket itself and waits for it to come back through the client's
// reader (its own read loop, or the caller's loop calling HandlePacket).
// A nil error proves that STUN answers on the socket will reach the client.
// It returns an error matching ErrSharedSocket when the request did not
// come back in time (bounded by ctx and about a second), and nil without a
// test when the socket's own address cannot be sent to.
func (c *Client) CheckDelivery(ctx context.Context) error {
	self := callerconn.AddrPortOf(c.conn.LocalAddr())
	if !self.IsValid() || self.Port() == 0 {
		return nil
	}
	if self.Addr().IsUnspecified() {
		lo := netip.AddrFrom4([4]byte{127, 0, 0, 1})
		if self.Addr().Is6() && !self.Addr().Is4In6() {
			lo = netip.IPv6Loopback()
		}
		self = netip.AddrPortFrom(lo, self.Port())
	}
	_, err := c.transact(ctx, self, BindingOptions{RTO: 50 * time.Millisecond, Attempts: 4}, c.conn, true, nil)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil, errors.Is(err, ErrClosed):
		return err
	}
	how := "the client reads it itself, so another goroutine must be reading the socket too (a SIP stack's read loop): run the discovery through Client.Discover on a Client with CallerReads and hand it every STUN packet the loop reads"
	if c.cfg.CallerReads {
		how = "the caller's read loop does not hand STUN packets to HandlePacket, or does not run"
	}
	return fmt.Errorf("a STUN request sent by %v to itself never came back: %s: %w", self, how, ErrSharedSocket)
}
