// Package rtpengine drives rtpengine, the media relay of Kamailio and
// OpenSIPS deployments, over its ng control protocol, so that a SIP edge
// proxy can relay the media of calls whose UAs sit behind NATs that nothing
// direct gets through.
//
// The ng protocol is bencode over UDP: each request is a cookie, a space and
// a bencode dictionary ("command": "offer", "call-id", "from-tag", "sdp",
// "flags", ...); the reply repeats the cookie. This package holds:
//
//   - a small bencode codec (AppendString, AppendBytes, AppendInt and a
//     Decoder that indexes a message without copying, bounded in depth and
//     size, with errors that say what was wrong at which byte);
//   - the requests a NAT edge sends (offer, answer, delete, query, ping) with
//     its flags in Options: SIP source address or trust address, symmetric,
//     replace origin and session connection, ICE remove or force, direction,
//     address family;
//   - a Client on a UDP socket the caller owns: cookie-matched replies,
//     retransmission with the same cookie (rtpengine answers a retransmission
//     from its cache), timeouts, contexts;
//   - a Set of instances used as one, as Kamailio's rtpengine module uses a
//     set: a call's offer, answer and delete go to one instance (chosen by
//     Call-ID), and a new call fails over to the next instance when one does
//     not answer.
//
// The SIP side (when to offer, answer and delete, as the OpenSER NAT
// traversal algorithm says) is in the sub-package sipedge.
//
// # Usage
//
//	conn, _ := net.ListenUDP("udp", nil)                 // the caller owns the socket
//	c := rtpengine.NewClient(conn, rtpengine.ClientConfig{})
//	set, _ := rtpengine.NewSet(rtpengine.SetConfig{Client: c, Instances: addrs})
//	rep, err := set.Do(ctx, sdpBuf[:0], &rtpengine.Request{Command: rtpengine.Offer,
//		CallID: callID, FromTag: fromTag, SDP: body, Source: src.Addr(),
//		Options: rtpengine.Options{SIPSource: true, Symmetric: true, ReplaceOrigin: true}})
//	// forward the request with rep.SDP as its body
//
// # Concurrency
//
// Client and Set are safe for concurrent use; a Decoder and the Values it
// returns belong to one goroutine.
package rtpengine
