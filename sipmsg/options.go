package sipmsg

import (
	"net/netip"
	"strconv"
)

// OptionsRequest describes an OPTIONS request used as a SIP keep-alive
// (RFC 3261 §11) that also refreshes the NAT binding and, through rport,
// tells the UA its public address (RFC 3581).
type OptionsRequest struct {
	RequestURI string         // e.g. "sip:203.0.113.2"
	From       string         // From URI, e.g. "sip:alice@example.com"
	FromTag    string         // From tag; empty: derived from Branch
	To         string         // To URI; empty: RequestURI
	SentBy     netip.AddrPort // Via sent-by (the UA's local or learned public address)
	Transport  string         // Via transport: "UDP" (default), "TCP", "TLS", ...
	Branch     string         // Via branch; "z9hG4bK" is prefixed when missing
	NoRport    bool           // omit the empty ;rport Via parameter (RFC 3581)
	CallID     string         // Call-ID
	CSeq       uint32         // CSeq number
	Contact    string         // optional Contact URI (no angle brackets)
	MaxFwd     int            // Max-Forwards; 0 means 70
	UserAgent  string         // optional User-Agent
}

// BranchMagic is the RFC 3261 §8.1.1.7 branch prefix.
const BranchMagic = "z9hG4bK"

// AppendOptions appends the OPTIONS request r to dst and returns the
// extended buffer. It allocates nothing when dst has room.
func AppendOptions(dst []byte, r OptionsRequest) []byte {
	dst = append(dst, "OPTIONS "...)
	dst = append(dst, r.RequestURI...)
	dst = append(dst, " SIP/2.0\r\nVia: SIP/2.0/"...)
	if r.Transport == "" {
		dst = append(dst, "UDP"...)
	} else {
		dst = appendUpper(dst, r.Transport)
	}
	dst = append(dst, ' ')
	dst = appendHostPort(dst, r.SentBy.Addr(), r.SentBy.Port())
	dst = append(dst, ";branch="...)
	if !hasPrefixString(r.Branch, BranchMagic) {
		dst = append(dst, BranchMagic...)
	}
	dst = append(dst, r.Branch...)
	if !r.NoRport {
		dst = append(dst, ";rport"...)
	}
	dst = append(dst, "\r\nMax-Forwards: "...)
	mf := r.MaxFwd
	if mf <= 0 {
		mf = 70
	}
	dst = strconv.AppendInt(dst, int64(mf), 10)
	dst = append(dst, "\r\nFrom: <"...)
	dst = append(dst, r.From...)
	dst = append(dst, ">;tag="...)
	if r.FromTag != "" {
		dst = append(dst, r.FromTag...)
	} else {
		b := r.Branch
		if hasPrefixString(b, BranchMagic) {
			b = b[len(BranchMagic):]
		}
		if b == "" {
			b = "0"
		}
		dst = append(dst, b...)
	}
	dst = append(dst, "\r\nTo: <"...)
	if r.To != "" {
		dst = append(dst, r.To...)
	} else {
		dst = append(dst, r.RequestURI...)
	}
	dst = append(dst, ">\r\nCall-ID: "...)
	dst = append(dst, r.CallID...)
	dst = append(dst, "\r\nCSeq: "...)
	dst = strconv.AppendUint(dst, uint64(r.CSeq), 10)
	dst = append(dst, " OPTIONS\r\n"...)
	if r.Contact != "" {
		dst = append(dst, "Contact: <"...)
		dst = append(dst, r.Contact...)
		dst = append(dst, ">\r\n"...)
	}
	if r.UserAgent != "" {
		dst = append(dst, "User-Agent: "...)
		dst = append(dst, r.UserAgent...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Length: 0\r\n\r\n"...)
	return dst
}

func hasPrefixString(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func appendUpper(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendHostPort appends host[:port], IPv6 in brackets; port 0 is omitted.
func appendHostPort(dst []byte, a netip.Addr, port uint16) []byte {
	dst = appendHost(dst, a)
	if port != 0 {
		dst = append(dst, ':')
		dst = strconv.AppendUint(dst, uint64(port), 10)
	}
	return dst
}

// appendHost appends an IP address as a SIP host: IPv6 references in
// brackets (RFC 3261 §25.1), IPv4-mapped addresses as IPv4.
func appendHost(dst []byte, a netip.Addr) []byte {
	a = a.Unmap()
	if a.Is4() {
		return appendIPv4(dst, a)
	}
	if a.Is6() {
		dst = append(dst, '[')
		dst = a.WithZone("").AppendTo(dst)
		return append(dst, ']')
	}
	return a.AppendTo(dst)
}

// appendIPv4 appends a dotted quad (netip's AppendTo does the same, slower).
func appendIPv4(dst []byte, a netip.Addr) []byte {
	lo, hi, n := ipv4Words(a.As4())
	return appendWords(dst, n, lo, hi)
}

// ipv4Words returns the dotted quad of v as two little-endian words and its
// length: each octet's digits and dot come from octetText as one word and
// are shifted into place, no branches and no stores. The first two words
// always land in lo; the last two may cross into hi (place). Every shift
// count is below 64, so no shift needs Go's test for larger ones.
func ipv4Words(v [4]byte) (lo, hi uint64, n int) {
	t0, t1, t2, t3 := octetText[v[0]], octetText[v[1]], octetText[v[2]], octetText[v[3]]
	s1 := 8 * uint(t0>>56) // bits before each word: s1 <= 32, s2 <= 64, s3 <= 96
	s2 := s1 + 8*uint(t1>>56)
	s3 := s2 + 8*uint(t2>>56)
	lo = t0&0xffffffff | (t1&0xffffffff)<<(s1&63)
	l2, h2 := place(t2&0xffffffff, s2)
	l3, h3 := place(t3&0xffffffff, s3)
	return lo | l2 | l3, h2 | h3, int(s3/8) + int(t3>>56) - 1 // without the last dot
}

// place returns w (at most 32 bits) shifted left by s < 128 bits as the low
// and high word of 128 bits.
func place(w uint64, s uint) (lo, hi uint64) {
	sl := s & 63
	lo = w << sl
	hi = w >> 1 >> (63 - sl) // the bits crossing into hi; none for sl == 0
	up := -uint64(s >> 6)    // all ones when s >= 64: w lies in hi only
	return lo &^ up, hi&^up | lo&up
}

// octetText holds, for each octet value, its decimal digits followed by a
// dot in the low four bytes (little-endian) and the digit count plus one in
// the top byte.
var octetText = func() (t [256]uint64) {
	for o := range t {
		var d []byte
		d = strconv.AppendUint(d, uint64(o), 10)
		d = append(d, '.')
		var w uint64
		for i, c := range d {
			w |= uint64(c) << (8 * i)
		}
		t[o] = w | uint64(len(d))<<56
	}
	return t
}()
