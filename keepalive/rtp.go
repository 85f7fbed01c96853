package keepalive

import (
	"encoding/binary"
	"time"
)

// DefaultRTPPayloadType is the payload type of RTP keep-alives when
// RTPState.PayloadType is zero: 127, the last dynamic type, which SDP
// offers seldom use. RFC 6263 §4.6 asks for a type the session has not
// negotiated, so that the peer drops the packet; set PayloadType to one
// absent from the session's m= line when 127 is in it.
const DefaultRTPPayloadType = 127

// RTPState is the RTP stream a keep-alive continues (RFC 3550 §5.1): the
// keep-alives use its SSRC, carry on its sequence numbers, and move its
// timestamp with the clock, so that the stream resumes seamlessly after the
// hold.
type RTPState struct {
	SSRC        uint32 // the stream's SSRC
	Seq         uint16 // sequence number of the next packet
	Timestamp   uint32 // RTP timestamp when the Keeper started
	ClockRate   uint32 // RTP clock rate (8000 for PCMU); 0 keeps Timestamp fixed
	PayloadType uint8  // 0 means DefaultRTPPayloadType
}

// AppendRTPKeepalive appends an RTP packet with no payload (a 12-byte
// header: version 2, no padding, extension, CSRCs or marker) to dst.
func AppendRTPKeepalive(dst []byte, pt uint8, seq uint16, ts, ssrc uint32) []byte {
	dst = append(dst, 0x80, pt&0x7f)
	dst = binary.BigEndian.AppendUint16(dst, seq)
	dst = binary.BigEndian.AppendUint32(dst, ts)
	return binary.BigEndian.AppendUint32(dst, ssrc)
}

// appendKeepalive appends the next keep-alive of the stream, elapsed after
// the Keeper started, and advances the sequence number.
func (s *RTPState) appendKeepalive(dst []byte, elapsed time.Duration) []byte {
	pt := s.PayloadType
	if pt == 0 {
		pt = DefaultRTPPayloadType
	}
	ts := s.Timestamp
	if s.ClockRate > 0 && elapsed > 0 {
		ts += uint32(uint64(elapsed) * uint64(s.ClockRate) / uint64(time.Second))
	}
	dst = AppendRTPKeepalive(dst, pt, s.Seq, ts, s.SSRC)
	s.Seq++
	return dst
}
