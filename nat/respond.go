package nat

import (
	"fmt"
	"net/netip"

	"github.com/pion/stun/v2"
)

// AppendBindingResponse appends to dst the answer to STUN Binding request
// req received from from on a socket bound to local: a success response
// with XOR-MAPPED-ADDRESS = from (MAPPED-ADDRESS for an RFC 3489 client)
// and RESPONSE-ORIGIN = local, or a 420 error for a request that asks for
// what one socket cannot do (CHANGE-REQUEST) or carries an unknown
// comprehension-required attribute. It is the STUN server a SIP edge proxy
// runs on its own SIP port for RFC 5626 §4.4.2 keep-alives (the caller's
// read loop hands it the packets IsSTUN picks). It returns an error
// wrapping ErrNotSTUN or ErrMalformed for anything else; send nothing then.
func AppendBindingResponse(dst, req []byte, from, local netip.AddrPort) ([]byte, error) {
	r, err := parseRequest(req)
	if err != nil {
		return dst, fmt.Errorf("stun: answer %s: %w", from, err)
	}
	if !from.IsValid() || from.Port() == 0 {
		return dst, fmt.Errorf("stun: answer %s: %w", from, ErrMalformed)
	}
	var s Server
	var out stun.Message
	switch {
	case r.unknown != 0:
		s.buildError(&out, &r, 420, "Unknown Attribute", r.unknown)
	case r.changeIP || r.changePort:
		s.buildError(&out, &r, 420, "Unknown Attribute", uint16(stun.AttrChangeRequest))
	default:
		s.buildSuccess(&out, &r, from, local)
	}
	return append(dst, out.Raw...), nil
}
