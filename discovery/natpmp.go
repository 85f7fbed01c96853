package discovery

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// NAT-PMP wire format, RFC 6886. Requests go to the gateway's port 5351; the
// gateway multicasts address-change announcements to 224.0.0.1:5350.
const (
	pmpPort         = 5351
	pmpClientPort   = 5350
	pmpVersion      = 0
	pmpOpAddr       = 0
	pmpOpMapUDP     = 1
	pmpOpMapTCP     = 2
	pmpOpReply      = 0x80
	pmpAddrRespLen  = 12
	pmpMapRespLen   = 16
	pmpMapReqLen    = 12
	pmpResultUnsupp = 1 // unsupported version
)

var pmpResultText = [...]string{
	0: "success",
	1: "unsupported version",
	2: "not authorized/refused",
	3: "network failure",
	4: "out of resources",
	5: "unsupported opcode",
}

func pmpResultString(code uint16) string {
	if int(code) < len(pmpResultText) {
		return pmpResultText[code]
	}
	return "unknown result"
}

// appendPMPAddrRequest appends an external-address request (RFC 6886 3.2).
func appendPMPAddrRequest(b []byte) []byte { return append(b, pmpVersion, pmpOpAddr) }

// appendPMPMapRequest appends a mapping request (RFC 6886 3.3). A lifetime of
// 0 with external port 0 deletes the mapping.
func appendPMPMapRequest(b []byte, tcp bool, internal, external uint16, lifetime uint32) []byte {
	op := byte(pmpOpMapUDP)
	if tcp {
		op = pmpOpMapTCP
	}
	b = append(b, pmpVersion, op, 0, 0)
	b = binary.BigEndian.AppendUint16(b, internal)
	b = binary.BigEndian.AppendUint16(b, external)
	return binary.BigEndian.AppendUint32(b, lifetime)
}

// pmpResponse is a decoded NAT-PMP response.
type pmpResponse struct {
	Op           uint8 // request opcode (without the 0x80 reply bit)
	Result       uint16
	Epoch        uint32 // seconds since start of epoch
	External     netip.Addr
	InternalPort uint16
	ExternalPort uint16
	Lifetime     uint32
}

// parsePMPResponse decodes a NAT-PMP response. A short response carrying a
// non-zero result code (a gateway refusing a request it does not
// understand) is returned with only Op and Result set.
func parsePMPResponse(b []byte) (pmpResponse, error) {
	var r pmpResponse
	if len(b) < 4 {
		return r, fmt.Errorf("NAT-PMP response of %d bytes: %w", len(b), ErrMalformed)
	}
	if b[0] != pmpVersion {
		return r, fmt.Errorf("NAT-PMP response version %d: %w", b[0], ErrMalformed)
	}
	if b[1]&pmpOpReply == 0 {
		return r, fmt.Errorf("NAT-PMP packet is a request (op %d): %w", b[1], ErrMalformed)
	}
	r.Op = b[1] &^ pmpOpReply
	r.Result = binary.BigEndian.Uint16(b[2:4])
	if r.Result != 0 && len(b) < 8 {
		return r, nil
	}
	if len(b) < 8 {
		return r, fmt.Errorf("NAT-PMP response of %d bytes: %w", len(b), ErrMalformed)
	}
	r.Epoch = binary.BigEndian.Uint32(b[4:8])
	if r.Result != 0 {
		return r, nil
	}
	switch r.Op {
	case pmpOpAddr:
		if len(b) < pmpAddrRespLen {
			return r, fmt.Errorf("NAT-PMP address response of %d bytes: %w", len(b), ErrMalformed)
		}
		r.External = netip.AddrFrom4([4]byte(b[8:12]))
	case pmpOpMapUDP, pmpOpMapTCP:
		if len(b) < pmpMapRespLen {
			return r, fmt.Errorf("NAT-PMP mapping response of %d bytes: %w", len(b), ErrMalformed)
		}
		r.InternalPort = binary.BigEndian.Uint16(b[8:10])
		r.ExternalPort = binary.BigEndian.Uint16(b[10:12])
		r.Lifetime = binary.BigEndian.Uint32(b[12:16])
	default:
		return r, fmt.Errorf("NAT-PMP opcode %d: %w", r.Op, ErrMalformed)
	}
	return r, nil
}

// pmpError turns a non-zero result into a *ResultError.
func pmpError(code uint16) error {
	if code == 0 {
		return nil
	}
	return &ResultError{Protocol: ProtoNATPMP, Code: int(code), Text: pmpResultString(code)}
}
