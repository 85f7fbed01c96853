// Package sdp finds the private addresses in SDP bodies (RFC 8866) that
// cause one-way or no audio behind NAT, and rewrites them to the address
// that works, changing nothing else in the body.
//
// # What it tests
//
// Check (and every rewrite) runs these NAT tests and says which fired and
// where (Result, Finding: test, m= section, line, address):
//
//   - PrivateSessionConn: the session-level c= names a private address;
//   - PrivateMediaConn: a media-level c= does;
//   - PrivateOrigin: o= does (RFC 8866 calls it informational, but some
//     peers key dialogs or media on it);
//   - PrivateRTCP: a=rtcp in the address form of RFC 3605
//     ("a=rtcp:53020 IN IP4 10.0.0.5") does;
//   - ICE: the body carries ICE (a=candidate, a=ice-ufrag; RFC 8445, RFC
//     8839, formerly RFC 5245).
//
// "Private" is ipaddr.IsPrivate: RFC 1918, IPv6 ULA, RFC 6598 shared space,
// loopback and link-local. 0.0.0.0 and :: (hold), multicast, public,
// documentation and FQDN addresses never fire. The range table lives in
// package ipaddr only.
//
// # What it rewrites
//
// Given Options.Public (IPv4 or IPv6) and optionally a port map
// (Options.Ports: local RTP/RTCP port to the public port the NAT gave it):
//
//   - session and media c= holding a private address (any unicast address
//     with Options.All) become the public address, with IN IP4 / IN IP6
//     changed to match;
//   - o= the same, with Options.Origin;
//   - a=rtcp addresses the same; a=rtcp ports through the map;
//   - m= ports through the map, in streams whose connection address was
//     rewritten; a stream without a=rtcp and a=rtcp-mux whose RTCP port
//     (RTP+1, RFC 3550) maps somewhere other than mapped RTP+1 gets an
//     "a=rtcp:port" line (RFC 3605);
//   - an optional marker line (Options.Marker, e.g. "a=nortpproxy:yes")
//     is added at session level when something changed.
//
// Left alone: hold addresses, multicast and FQDN addresses, streams with
// port 0 (rejected, RFC 3264), a=candidate lines, and, unless
// Options.AllowICE is set, any body that carries ICE (Result.SkippedICE):
// rewriting c= under ICE makes the default candidate disagree with the
// candidate list, which ICE agents treat as an ICE mismatch (RFC 8445
// section 5.1.2, RFC 8839 section 4.2.1). A stream on hold by attribute
// (a=sendonly, a=inactive) keeps a real address and is rewritten: RTCP
// still flows.
//
// The rewrite is byte-exact outside the spans it changes: every other byte
// (line order, spacing, unknown lines, CRLF or bare LF line endings) is
// copied as received, and added lines take the line ending of the line
// before them. It is idempotent: rewriting its output again changes
// nothing, because ports are only mapped in streams whose address this pass
// rewrote.
//
// # Doors
//
// AppendRewrite works on the body's bytes: one pass, appending into the
// caller's buffer, no allocation. CheckFrom is Check for a proxy that knows
// where the body came from: it adds ConnDiffers (a c= address other than
// the source). The SDP inside a whole SIP message is rewritten by package
// sipmsg (Fix.SDP for a proxy, AppendRewriteSDP for a UA), whose one header
// scanner finds the body and whose one Content-Length patcher follows the
// new length. For callers that hold the SDP parsed by another library,
// FieldRewriter, PrivateAddr, PrivateRTCPAddr and Result.Add apply the same
// rules one field at a time; package [github.com/sipnat/sipnat/sdp/sdppion]
// uses them to give the same rewrite on a pion/sdp description (and says
// what a pion round trip changes besides). This package itself links no SDP library.
//
// # The kernel SIP ALG
//
// The golden files in testdata include INVITEs captured in the project's
// NAT lab before and after Linux's SIP ALG (nf_nat_sip): from sipp, baresip
// (with and without ICE) and a minimal UA. Rewriting the sent body to the
// public address gives exactly the ALG's c= and o=. The ALG differs where it
// does less or worse: it leaves RFC 3605 a=rtcp addresses private, it
// rewrites c= under ICE without touching the candidates, it writes the
// address of the last stream into o= and the session c= (0.0.0.0 when that
// stream is on hold, putting every stream without its own c= on hold), and
// it drops, silently, an INVITE that offers an RTP port it already expects
// for another SIP flow. TestLabALG reproduces all of this live.
//
// # Usage
//
//	opts := &sdp.Options{
//		Public: publicAddr,                      // from STUN, UPnP or PCP
//		Ports:  []sdp.PortMap{{Local: 4000, Public: 62000}},  // optional
//		Origin: true,
//	}
//	buf, res, err := sdp.AppendRewrite(buf[:0], body, opts)
//	if err != nil { ... }                        // not SDP, or bad Options
//	if res.SkippedICE { ... }                    // ICE handles NAT itself
//
//	// A whole SIP message, Content-Length fixed (package sipmsg):
//	out, res, err := sipmsg.AppendRewriteSDP(out[:0], &msg, opts)
//
//	// Just the tests:
//	res, err := sdp.Check(body)
//	for f := range res.Findings() { ... }
//
// # Concurrency
//
// The package has no state. Its functions may be called from any number of
// goroutines at once, as long as each call has its own destination buffer
// and no call changes Options (or its Ports) or the input while another
// reads them.
package sdp
