// Package turn is a TURN client (RFC 8656, and RFC 5766 servers) for a SIP
// user agent's media: it relays RTP through a TURN server where nothing
// direct works (an address-dependent NAT mapping with no port mapping), on
// the UA's own RTP socket.
//
// Over UDP the client shares the caller's socket, as nat.Client does: the
// socket keeps carrying STUN keep-alives and, where the path is direct,
// RTP; the client only claims what comes from the TURN server. Over TCP and
// TLS (RFC 8656 section 3.1) the client dials and reads its own stream.
//
// What it does:
//
//   - long-term credentials (RFC 8489 section 9.2; 401 gives realm and
//     nonce, 438 Stale Nonce is retried);
//   - Allocate with REQUESTED-TRANSPORT UDP, EVEN-PORT and
//     RESERVATION-TOKEN (an RTCP allocation on the next port through a
//     second Client, or rtcp-mux on one), and Refresh at half the granted
//     lifetime;
//   - CreatePermission and ChannelBind for the peer's SDP address, for the
//     addresses the caller reports and for new ports of permitted peers,
//     renewed every PermissionRefresh;
//   - ChannelData on the hot path, with Send and Data indications until a
//     channel is bound;
//   - a Binding keep-alive towards the server at the interval the measured
//     NAT binding lifetime implies (not only at the permission refresh). It
//     also sees the NAT move the flow, and then takes the allocation along
//     with an RFC 8016 mobility ticket where the server gives one (same
//     relayed address);
//   - a lost allocation (437 Allocation Mismatch, a broken stream, a moved
//     flow, expiry) is allocated again, with permissions and channels
//     restored.
//
// Events tell of refresh failures, losses and recovery. Errors are
// ErrUnauthorized (a wrong password), ErrUnreachable, ErrQuota (486),
// ErrUnsupportedTransport (442) and *Error for other answers.
//
// TLS comes from Config.DialContext (a tls.Dialer), so a UA that relays
// over UDP does not link crypto/tls for it. Only this package links the
// TURN code: a UA that does not relay, and a proxy, do not. Messages other
// than the hot path's are encoded with github.com/pion/stun/v2, which
// sipnat already uses; the API uses standard types only.
//
// github.com/pion/turn was not used: its client reads the socket through
// its own goroutine and copies every relayed packet into a queue (two
// allocations a packet each way), times everything with time.Now and its
// own timers (no injectable clock), refreshes permissions at a fixed 120 s
// and tells nothing of a lost allocation; its wire code is internal.
//
// RFCs: RFC 8656 (TURN), RFC 5766 (TURN, older servers), RFC 8016 (TURN
// mobility), RFC 8489 (STUN), RFC 4787 (NAT behaviour), RFC 3550 and
// RFC 5761 (RTP, RTCP, rtcp-mux).
//
// # Usage
//
// On the caller's RTP socket, the caller reading it:
//
//	c, err := turn.New(rtpConn, turn.Config{Server: srv, Username: u, Password: p,
//		CallerReads: true, KeepAlive: natResult.SIP.KeepAlive})
//	a, err := c.Allocate(ctx)          // a.Relayed goes into the SDP
//	err = c.Permit(ctx, peerFromSDP)    // permission and channel
//	for {
//		n, from, _ := rtpConn.ReadFromUDPAddrPort(buf)
//		if p, peer, ok := c.HandlePacket(buf[:n], from); ok {
//			if p != nil {
//				handleRTP(p, peer) // relayed
//			}
//			continue
//		}
//		handleDirect(buf[:n], from) // direct RTP, STUN answers (hand them to nat.Client)
//	}
//	c.Send(rtp, peerFromSDP) // ChannelData to the server
//
// Hand packets to the TURN client before a nat.Client on the same socket:
// nat.Client claims every STUN answer, the TURN client only its own.
//
// # Concurrency
//
// All methods are safe for concurrent use. Refreshes, keep-alives and
// recovery run on the Clock's timers; OnEvent is called from them, one at a
// time. Close waits for them.
package turn
