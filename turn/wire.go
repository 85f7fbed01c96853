package turn

import (
	"encoding/binary"
	"net/netip"
)

// Wire constants of RFC 8656 that the hot path encodes by hand.
const (
	magicCookie   = 0x2112A442
	headerSize    = 20 // STUN header
	chanHeader    = 4  // ChannelData header: channel number and length
	minChannel    = 0x4000
	maxChannel    = 0x4FFF // RFC 8656 section 12; RFC 5766 allowed up to 0x7FFF
	typeSendInd   = 0x0016 // Send indication
	typeDataInd   = 0x0017 // Data indication
	attrPeerAddr  = 0x0012 // XOR-PEER-ADDRESS
	attrData      = 0x0013 // DATA
	maxFrameSize  = 0xFFFF + chanHeader + 3
	sendIndFixed  = headerSize + 4 + 20 + 4 // header, XOR-PEER-ADDRESS (IPv6 size), DATA header
	familyIPv4    = 0x01
	familyIPv6    = 0x02
	protocolUDP   = 17
	evenPortRBit  = 0x80
	reservationSz = 8
)

// IsChannelData tells whether b starts like a ChannelData message (RFC 8656
// section 12.4): the first two bits are 01, which no STUN message, RTP or
// RTCP packet (version 2: first bits 10) and no SIP message has.
func IsChannelData(b []byte) bool {
	return len(b) >= chanHeader && b[0]&0xC0 == 0x40
}

// appendChannelData appends a ChannelData message carrying p on channel ch.
// Streams (TCP, TLS) need the message padded to a multiple of 4 bytes.
func appendChannelData(dst []byte, ch uint16, p []byte, pad bool) []byte {
	dst = append(dst, byte(ch>>8), byte(ch), byte(len(p)>>8), byte(len(p)))
	dst = append(dst, p...)
	if pad {
		dst = appendPadding(dst, len(p))
	}
	return dst
}

func appendPadding(dst []byte, n int) []byte {
	for ; n%4 != 0; n++ {
		dst = append(dst, 0)
	}
	return dst
}

// parseChannelData returns the channel number and payload of a ChannelData
// message; trailing padding (streams) is allowed, a short message is not.
func parseChannelData(b []byte) (ch uint16, payload []byte, ok bool) {
	if !IsChannelData(b) {
		return 0, nil, false
	}
	ch = binary.BigEndian.Uint16(b)
	n := int(binary.BigEndian.Uint16(b[2:]))
	if len(b)-chanHeader < n || ch > maxChannel {
		return 0, nil, false
	}
	return ch, b[chanHeader : chanHeader+n], true
}

// appendSendIndication appends a Send indication (RFC 8656 section 11.1)
// carrying p to peer, with transaction ID id. Indications carry no
// MESSAGE-INTEGRITY, so the whole message is built here without allocating.
func appendSendIndication(dst []byte, id *[12]byte, peer netip.AddrPort, p []byte) []byte {
	start := len(dst)
	dst = append(dst, typeSendInd>>8, typeSendInd&0xFF, 0, 0, 0x21, 0x12, 0xA4, 0x42)
	dst = append(dst, id[:]...)
	dst = appendXORAddr(dst, attrPeerAddr, peer, id)
	dst = append(dst, attrData>>8, attrData&0xFF, byte(len(p)>>8), byte(len(p)))
	dst = append(dst, p...)
	dst = appendPadding(dst, len(p))
	binary.BigEndian.PutUint16(dst[start+2:], uint16(len(dst)-start-headerSize))
	return dst
}

// appendXORAddr appends an XOR-encoded address attribute of type t (RFC 8489
// section 14.2).
func appendXORAddr(dst []byte, t uint16, a netip.AddrPort, id *[12]byte) []byte {
	ip := a.Addr().Unmap()
	fam, n := byte(familyIPv4), 4
	if ip.Is6() {
		fam, n = familyIPv6, 16
	}
	dst = append(dst, byte(t>>8), byte(t), 0, byte(4+n), 0, fam)
	port := a.Port() ^ (magicCookie >> 16)
	dst = append(dst, byte(port>>8), byte(port))
	key := [16]byte{0x21, 0x12, 0xA4, 0x42}
	copy(key[4:], id[:])
	raw := ip.As16()
	b := raw[16-n:]
	if n == 16 {
		b = raw[:]
	}
	for i := 0; i < n; i++ {
		dst = append(dst, b[i]^key[i])
	}
	return dst
}

// parseXORAddr decodes the value of an XOR-encoded address attribute, with
// the transaction ID of its message.
func parseXORAddr(v []byte, id []byte) (netip.AddrPort, bool) {
	if len(v) < 4 {
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(v[2:]) ^ (magicCookie >> 16)
	var key [16]byte
	binary.BigEndian.PutUint32(key[:], magicCookie)
	copy(key[4:], id)
	switch {
	case v[1] == familyIPv4 && len(v) == 8:
		var a [4]byte
		for i := range a {
			a[i] = v[4+i] ^ key[i]
		}
		return netip.AddrPortFrom(netip.AddrFrom4(a), port), true
	case v[1] == familyIPv6 && len(v) == 20:
		var a [16]byte
		for i := range a {
			a[i] = v[4+i] ^ key[i]
		}
		return netip.AddrPortFrom(netip.AddrFrom16(a), port), true
	}
	return netip.AddrPort{}, false
}

// parseDataIndication returns the peer and payload of a Data indication
// (RFC 8656 section 11.4); ok is false for anything else or a malformed one.
// The payload aliases b.
func parseDataIndication(b []byte) (peer netip.AddrPort, payload []byte, ok bool) {
	if len(b) < headerSize || binary.BigEndian.Uint16(b) != typeDataInd ||
		binary.BigEndian.Uint32(b[4:]) != magicCookie {
		return netip.AddrPort{}, nil, false
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n%4 != 0 || len(b) < headerSize+n {
		return netip.AddrPort{}, nil, false
	}
	id := b[8:headerSize]
	attrs := b[headerSize : headerSize+n]
	havePeer, haveData := false, false
	for len(attrs) >= 4 {
		t := binary.BigEndian.Uint16(attrs)
		l := int(binary.BigEndian.Uint16(attrs[2:]))
		if len(attrs)-4 < l {
			return netip.AddrPort{}, nil, false
		}
		v := attrs[4 : 4+l]
		switch t {
		case attrPeerAddr:
			peer, havePeer = parseXORAddr(v, id)
			if !havePeer {
				return netip.AddrPort{}, nil, false
			}
		case attrData:
			payload, haveData = v, true
		}
		skip := 4 + l + (4-l%4)%4
		if skip > len(attrs) {
			break
		}
		attrs = attrs[skip:]
	}
	if !havePeer || !haveData {
		return netip.AddrPort{}, nil, false
	}
	return peer, payload, true
}

// isSTUN tells whether b looks like a STUN message (RFC 8489 section 6:
// first two bits zero, the magic cookie, a length that is a multiple of 4).
func isSTUN(b []byte) bool {
	return len(b) >= headerSize && b[0]&0xC0 == 0 &&
		binary.BigEndian.Uint32(b[4:]) == magicCookie && b[3]&3 == 0
}

// stunClass returns the class bits of a STUN message type: 0 request,
// 1 indication, 2 success response, 3 error response.
func stunClass(b []byte) int {
	t := binary.BigEndian.Uint16(b)
	return int((t>>4)&1 | (t>>7)&2)
}

// frameLen returns how long the message that starts b is on a stream (STUN:
// header plus length; ChannelData: header plus length padded to 4), or -1
// when b starts neither.
func frameLen(h []byte) int {
	n := int(binary.BigEndian.Uint16(h[2:]))
	switch {
	case h[0]&0xC0 == 0:
		return headerSize + n
	case h[0]&0xC0 == 0x40:
		return chanHeader + (n+3)&^3
	}
	return -1
}
