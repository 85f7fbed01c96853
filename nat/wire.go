package nat

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/netip"

	"github.com/pion/stun/v2"
)

// STUN wire constants used beside pion/stun's message codec.
const (
	headerSize      = 20
	magicCookie     = 0x2112A442
	fingerprintXOR  = 0x5354554e
	attrHeaderSize  = 4
	maxMessageSize  = 2048 // largest message the client and server read (PADDING makes them exceed the MTU)
	familyIPv4      = 0x01
	familyIPv6      = 0x02
	changeIPFlag    = 0x04
	changePortFlag  = 0x02
	attrSourceAddr  = stun.AttrType(0x0004) // RFC 3489 SOURCE-ADDRESS
	attrChangedAddr = stun.AttrType(0x0005) // RFC 3489 CHANGED-ADDRESS
)

// IsSTUN reports whether b looks like one whole STUN message (RFC 8489
// section 5): the two top bits are zero, the magic cookie is present, and the
// length field, a multiple of four, matches len(b). SIP messages start with a
// letter and CRLF keep-alives with CR, so IsSTUN tells them apart from STUN on
// a shared socket. It does not allocate.
func IsSTUN(b []byte) bool {
	if len(b) < headerSize || b[0]&0xC0 != 0 {
		return false
	}
	if binary.BigEndian.Uint32(b[4:8]) != magicCookie {
		return false
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	return n%4 == 0 && headerSize+n == len(b)
}

// appendAddrValue appends the value of a (XOR-)MAPPED-ADDRESS style
// attribute for ap to b. With xor set, the port and address are XORed with
// the magic cookie and transaction ID as RFC 8489 section 14.2 says.
func appendAddrValue(b []byte, ap netip.AddrPort, xor bool, txid []byte) []byte {
	a := ap.Addr().Unmap()
	port := ap.Port()
	fam := byte(familyIPv4)
	if a.Is6() {
		fam = familyIPv6
	}
	var key [16]byte
	if xor {
		binary.BigEndian.PutUint32(key[0:4], magicCookie)
		copy(key[4:], txid)
		port ^= magicCookie >> 16
	}
	b = append(b, 0, fam, byte(port>>8), byte(port))
	if fam == familyIPv4 {
		v := a.As4()
		for i := range v {
			b = append(b, v[i]^key[i])
		}
		return b
	}
	v := a.As16()
	for i := range v {
		b = append(b, v[i]^key[i])
	}
	return b
}

// parseAddrInto decodes an address attribute value into *dst and reports
// whether it was well-formed. With txid (the 12-byte transaction ID) the
// value is XOR-MAPPED-ADDRESS style (RFC 8489 section 14.2). It does not
// allocate.
func parseAddrInto(dst *netip.AddrPort, v []byte, txid []byte) bool {
	if len(v) < 4 {
		return false
	}
	port := binary.BigEndian.Uint16(v[2:4])
	xor := txid != nil
	switch {
	case v[1] == familyIPv4 && len(v) == 8:
		a := binary.BigEndian.Uint32(v[4:8])
		if xor {
			port ^= magicCookie >> 16
			a ^= magicCookie
		}
		*dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), port)
		return true
	case v[1] == familyIPv6 && len(v) == 20 && (!xor || len(txid) == 12):
		a := [16]byte(v[4:20])
		if xor {
			port ^= magicCookie >> 16
			binary.BigEndian.PutUint32(a[:4], binary.BigEndian.Uint32(a[:4])^magicCookie)
			for i := range 12 {
				a[4+i] ^= txid[i]
			}
		}
		*dst = netip.AddrPortFrom(netip.AddrFrom16(a), port)
		return true
	}
	return false
}

// addFingerprint appends a FINGERPRINT attribute to m without allocating
// (pion's FingerprintAttr.AddTo allocates its 4-byte value).
func addFingerprint(m *stun.Message) {
	l := m.Length
	m.Length += 8
	m.WriteLength()
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], crc32.ChecksumIEEE(m.Raw)^fingerprintXOR)
	m.Length = l
	m.Add(stun.AttrFingerprint, v[:])
}

// checkFingerprint verifies FINGERPRINT when the decoded message m has one;
// it must be the last attribute.
func checkFingerprint(m *stun.Message) error {
	n := len(m.Attributes)
	if n == 0 {
		return nil
	}
	if last := m.Attributes[n-1]; last.Type == stun.AttrFingerprint {
		if len(last.Value) != 4 {
			return fmt.Errorf("fingerprint length %d: %w", len(last.Value), ErrMalformed)
		}
		raw := m.Raw[:headerSize+int(m.Length)]
		if binary.BigEndian.Uint32(last.Value) != crc32.ChecksumIEEE(raw[:len(raw)-8])^fingerprintXOR {
			return fmt.Errorf("fingerprint mismatch: %w", ErrMalformed)
		}
		n--
	}
	for _, a := range m.Attributes[:n] {
		if a.Type == stun.AttrFingerprint {
			return fmt.Errorf("fingerprint not last: %w", ErrMalformed)
		}
	}
	return nil
}
