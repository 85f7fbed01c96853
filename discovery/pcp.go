package discovery

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// PCP wire format, RFC 6887. Same server port as NAT-PMP (5351); version 2.
const (
	pcpVersion      = 2
	pcpOpAnnounce   = 0
	pcpOpMap        = 1
	pcpReplyBit     = 0x80
	pcpHeaderLen    = 24
	pcpMapLen       = 36
	pcpMaxPacket    = 1100 // RFC 6887 7: messages are at most 1100 bytes
	pcpOptThirdPty  = 1
	pcpProtoUDP     = 17
	pcpProtoTCP     = 6
	pcpResultUnsupp = 1 // UNSUPP_VERSION
)

var pcpResultText = [...]string{
	0:  "SUCCESS",
	1:  "UNSUPP_VERSION",
	2:  "NOT_AUTHORIZED",
	3:  "MALFORMED_REQUEST",
	4:  "UNSUPP_OPCODE",
	5:  "UNSUPP_OPTION",
	6:  "MALFORMED_OPTION",
	7:  "NETWORK_FAILURE",
	8:  "NO_RESOURCES",
	9:  "UNSUPP_PROTOCOL",
	10: "USER_EX_QUOTA",
	11: "CANNOT_PROVIDE_EXTERNAL",
	12: "ADDRESS_MISMATCH",
	13: "EXCESSIVE_REMOTE_PEERS",
}

func pcpResultString(code uint8) string {
	if int(code) < len(pcpResultText) {
		return pcpResultText[code]
	}
	return "unknown result"
}

// pcpError turns a non-zero result into a *ResultError.
func pcpError(code uint8) error {
	if code == 0 {
		return nil
	}
	return &ResultError{Protocol: ProtoPCP, Code: int(code), Text: pcpResultString(code)}
}

// appendPCPHeader appends the common request header (RFC 6887 7.1). The
// client address is written IPv4-mapped when it is IPv4.
func appendPCPHeader(b []byte, op uint8, lifetime uint32, client netip.Addr) []byte {
	b = append(b, pcpVersion, op&^pcpReplyBit, 0, 0)
	b = binary.BigEndian.AppendUint32(b, lifetime)
	a16 := client.As16() // IPv4 comes out IPv4-mapped, as PCP wants
	return append(b, a16[:]...)
}

// appendPCPAnnounceRequest appends an ANNOUNCE request (RFC 6887 14.1), used
// to learn whether the gateway speaks PCP and what its epoch is.
func appendPCPAnnounceRequest(b []byte, client netip.Addr) []byte {
	return appendPCPHeader(b, pcpOpAnnounce, 0, client)
}

// appendPCPMapRequest appends a MAP request (RFC 6887 11.1) without options:
// no THIRD_PARTY, so the gateway maps for the request's source address. A
// lifetime of 0 deletes the mapping with this nonce. suggested may be the
// zero Addr (any external address).
func appendPCPMapRequest(b []byte, nonce [12]byte, tcp bool, client netip.Addr, internal, external uint16, suggested netip.Addr, lifetime uint32) []byte {
	b = appendPCPHeader(b, pcpOpMap, lifetime, client)
	b = append(b, nonce[:]...)
	proto := byte(pcpProtoUDP)
	if tcp {
		proto = pcpProtoTCP
	}
	b = append(b, proto, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, internal)
	b = binary.BigEndian.AppendUint16(b, external)
	var ext [16]byte // all zeros: "::", or IPv4-mapped 0.0.0.0 below
	if suggested.IsValid() {
		ext = suggested.As16()
	} else if client.Is4() {
		ext[10], ext[11] = 0xff, 0xff
	}
	return append(b, ext[:]...)
}

// pcpResponse is a decoded PCP response.
type pcpResponse struct {
	Op           uint8 // opcode without the R bit
	Result       uint8
	Lifetime     uint32
	Epoch        uint32
	Nonce        [12]byte // MAP only
	Proto        uint8    // MAP only
	InternalPort uint16   // MAP only
	ExternalPort uint16   // MAP only
	External     netip.Addr
	ThirdParty   bool // a THIRD_PARTY option came back (we never send one)
	// Prefix64 are the PREFIX64 options (RFC 7225) that came back;
	// Prefix64Err says why one could not be read (the rest of the answer
	// stands: the option is optional to process).
	Prefix64    []Prefix64
	Prefix64Err error
	// Prefix64Echo: the request's own empty PREFIX64 came back. miniupnpd
	// builds its answer over the request and so returns the options it
	// does not process; it is no PREFIX64 answer.
	Prefix64Echo bool
}

// parsePCPResponse decodes a PCP response (RFC 6887 7.2) and the MAP payload
// (11.1), skipping options within bounds.
func parsePCPResponse(b []byte) (pcpResponse, error) {
	var r pcpResponse
	if len(b) < 4 {
		return r, fmt.Errorf("PCP response of %d bytes: %w", len(b), ErrMalformed)
	}
	if len(b) > pcpMaxPacket {
		return r, fmt.Errorf("PCP response of %d bytes (max %d): %w", len(b), pcpMaxPacket, ErrMalformed)
	}
	if b[0] != pcpVersion {
		return r, fmt.Errorf("PCP response version %d: %w", b[0], ErrMalformed)
	}
	if b[1]&pcpReplyBit == 0 {
		return r, fmt.Errorf("PCP packet is a request: %w", ErrMalformed)
	}
	r.Op = b[1] &^ pcpReplyBit
	r.Result = b[3]
	if len(b) < pcpHeaderLen || len(b)%4 != 0 {
		if r.Result != 0 {
			return r, nil // a short error reply is still an answer
		}
		return r, fmt.Errorf("PCP response of %d bytes: %w", len(b), ErrMalformed)
	}
	r.Lifetime = binary.BigEndian.Uint32(b[4:8])
	r.Epoch = binary.BigEndian.Uint32(b[8:12])
	rest := b[pcpHeaderLen:]
	switch r.Op {
	case pcpOpAnnounce:
	case pcpOpMap:
		if len(rest) < pcpMapLen {
			if r.Result != 0 {
				return r, nil
			}
			return r, fmt.Errorf("PCP MAP response of %d bytes: %w", len(b), ErrMalformed)
		}
		copy(r.Nonce[:], rest[0:12])
		r.Proto = rest[12]
		r.InternalPort = binary.BigEndian.Uint16(rest[16:18])
		r.ExternalPort = binary.BigEndian.Uint16(rest[18:20])
		r.External = netip.AddrFrom16([16]byte(rest[20:36])).Unmap()
		rest = rest[pcpMapLen:]
	default:
		// Other opcodes (PEER) are never requested; keep the header only.
		return r, nil
	}
	for len(rest) > 0 { // options, RFC 6887 7.3
		if len(rest) < 4 {
			return r, fmt.Errorf("PCP option header truncated: %w", ErrMalformed)
		}
		code := rest[0]
		n := int(binary.BigEndian.Uint16(rest[2:4]))
		padded := (n + 3) &^ 3
		if 4+padded > len(rest) {
			return r, fmt.Errorf("PCP option %d of %d bytes overruns the packet: %w", code, n, ErrMalformed)
		}
		switch code {
		case pcpOptThirdPty:
			r.ThirdParty = true
		case pcpOptPrefix64:
			body := rest[4 : 4+n]
			if n == 0 {
				r.Prefix64Echo = true
			} else if p, err := parsePrefix64(body); err != nil {
				r.Prefix64Err = err
			} else {
				r.Prefix64 = append(r.Prefix64, p)
			}
		}
		rest = rest[4+padded:]
	}
	return r, nil
}

// epochValid applies the epoch check of RFC 6887 8.5 (RFC 6886 3.6 is the
// same idea): false means the server's epoch is not consistent with the time
// that passed on the client, so the gateway lost its state (rebooted) and
// every mapping must be re-created. clientDelta is the time since the
// previous answer, in seconds.
func epochValid(prevEpoch, epoch uint32, clientDelta int64) bool {
	if int64(epoch)+1 < int64(prevEpoch) {
		return false // time went backwards by more than a second
	}
	serverDelta := int64(epoch) - int64(prevEpoch)
	if clientDelta < 0 {
		clientDelta = 0
	}
	if clientDelta+2 < serverDelta-serverDelta/16 || serverDelta+2 < clientDelta-clientDelta/16 {
		return false
	}
	return true
}
