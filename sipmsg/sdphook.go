package sipmsg

import (
	"fmt"
	"net/netip"

	"github.com/sipnat/sipnat/sdp"
)

// SDPNATCheck is the SDPCheck for Message.NATTest backed by the sdp
// package (sdp.CheckFrom): private when a private connection, origin or
// RTCP address is found; differs when a c= line names a unicast address
// other than src (Kamailio nat_uac_test 256, all c= lines). Hold (0.0.0.0,
// ::), multicast and host names are not counted as differing; a body that
// is not SDP fires neither.
func SDPNATCheck(body []byte, src netip.Addr) (private, differs bool) {
	res, err := sdp.CheckFrom(body, src)
	if err != nil {
		return false, false
	}
	return res.Behind(), res.Tests&sdp.ConnDiffers != 0
}

// AppendRewriteSDP appends m to dst with its SDP body rewritten by
// sdp.AppendRewrite under opts and the Content-Length value (full or
// compact name) set to the new body length, its padding kept; every other
// byte is copied as received. It is a UA's rewrite of its own message (the
// public address from STUN or a port mapping, the NAT's media ports), where
// Fix.SDP is a proxy's rewrite to a request's source.
//
// Only a body that is SDP (Content-Type application/sdp, or no
// Content-Type and a body starting "v=") is rewritten; any other message
// is copied unchanged with a zero Result. Errors are those of
// sdp.AppendRewrite (sdp.ErrBadOptions, sdp.ErrMalformed wrapped in a
// *sdp.SyntaxError, sdp.ErrTooLarge); on error dst is returned unchanged.
// With a buffer of enough capacity it does not allocate.
func AppendRewriteSDP(dst []byte, m *Message, opts *sdp.Options) ([]byte, sdp.Result, error) {
	if m.buf == nil {
		return dst, sdp.Result{}, perr(0, "rewrite", ErrMalformed)
	}
	e := &m.ed
	e.reset(m.buf)
	cl := m.clValue()
	if m.body.Len() == 0 || !m.hasSDP() {
		out, err := e.apply(dst, m.body, nil, cl)
		return out, sdp.Result{}, err
	}
	var res sdp.Result
	out, err := e.apply(dst, m.body, func(d, body []byte) ([]byte, error) {
		var err error
		d, res, err = sdp.AppendRewrite(d, body, opts)
		return d, err
	}, cl)
	if err != nil {
		return dst, res, fmt.Errorf("rewrite SDP body: %w", err)
	}
	return out, res, nil
}

// rewriteSDP rewrites the c= and o= addresses of an SDP body to public
// (Kamailio fix_nated_sdp with flags 2 and 8) through sdp.AppendRewrite.
func rewriteSDP(dst, body []byte, public netip.Addr) ([]byte, error) {
	opts := sdp.Options{Public: public, Origin: true}
	out, _, err := sdp.AppendRewrite(dst, body, &opts)
	return out, err
}
