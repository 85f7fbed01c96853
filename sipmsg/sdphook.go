package sipmsg

import (
	"net/netip"

	"github.com/sipnat/sipnat/sdp"
)

// SDPNATCheck is the SDPCheck for Message.NATTest backed by the sdp
// package: private when sdp.Check finds a private connection, origin or
// RTCP address; differs when a c= line names a unicast address other than
// src (Kamailio nat_uac_test 256, all c= lines). Hold (0.0.0.0, ::) and
// host names are not counted as differing.
func SDPNATCheck(body []byte, src netip.Addr) (private, differs bool) {
	res, err := sdp.Check(body)
	if err == nil {
		private = res.Behind()
	}
	src = src.Unmap()
	for i := 0; i < len(body); {
		e := indexLF(body, i)
		if e < 0 {
			e = len(body)
		}
		line := body[i:lineEnd(body, e)]
		i = e + 1
		if len(line) < 9 || line[0] != 'c' || line[1] != '=' || !hasPrefixFold(line[2:], "IN IP") {
			continue
		}
		a := line[7:]
		if len(a) < 2 || a[0] == ' ' {
			continue
		}
		a = a[1:]
		for len(a) > 0 && a[0] == ' ' {
			a = a[1:]
		}
		if sl := indexByte(a, 0, '/'); sl >= 0 {
			a = a[:sl]
		}
		a = a[:trimRight(a, 0, len(a))]
		ip, ok := parseIP(a)
		if ok && !ip.IsUnspecified() && !ip.IsMulticast() && ip.Unmap() != src {
			differs = true
		}
	}
	return private, differs
}

// rewriteSDP rewrites the c= and o= addresses of an SDP body to public
// (Kamailio fix_nated_sdp with flags 2 and 8) through sdp.AppendRewrite.
func rewriteSDP(dst, body []byte, public netip.Addr) ([]byte, error) {
	opts := sdp.Options{Public: public, Origin: true}
	out, _, err := sdp.AppendRewrite(dst, body, &opts)
	return out, err
}
