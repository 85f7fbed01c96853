package sipmsg

import "math/bits"

// HeaderKind identifies a header field the package knows by name, whether it
// appears in full or in compact form.
type HeaderKind uint8

// Known header kinds. HdrOther is any other header.
const (
	HdrOther HeaderKind = iota
	HdrVia
	HdrContact
	HdrFrom
	HdrTo
	HdrCallID
	HdrCSeq
	HdrContentLength
	HdrContentType
	HdrContentEncoding
	HdrRecordRoute
	HdrRoute
	HdrPath
	HdrMaxForwards
	HdrExpires
	HdrSupported
	HdrRequire
	HdrSubject
	HdrEvent
	HdrReferTo
	HdrAllowEvents
	HdrSessionExpires
	HdrIdentity
	HdrReferredBy
	HdrAcceptContact
	HdrRejectContact
	HdrRequestDisposition
	HdrIdentityInfo
	HdrUserAgent
	HdrServer
	HdrFlowTimer
	numHeaderKinds
)

// headerNames holds the full name and compact form (0: none) of each kind.
var headerNames = [numHeaderKinds]struct {
	name    string
	compact byte
}{
	HdrOther:              {"", 0},
	HdrVia:                {"Via", 'v'},
	HdrContact:            {"Contact", 'm'},
	HdrFrom:               {"From", 'f'},
	HdrTo:                 {"To", 't'},
	HdrCallID:             {"Call-ID", 'i'},
	HdrCSeq:               {"CSeq", 0},
	HdrContentLength:      {"Content-Length", 'l'},
	HdrContentType:        {"Content-Type", 'c'},
	HdrContentEncoding:    {"Content-Encoding", 'e'},
	HdrRecordRoute:        {"Record-Route", 0},
	HdrRoute:              {"Route", 0},
	HdrPath:               {"Path", 0},
	HdrMaxForwards:        {"Max-Forwards", 0},
	HdrExpires:            {"Expires", 0},
	HdrSupported:          {"Supported", 'k'},
	HdrRequire:            {"Require", 0},
	HdrSubject:            {"Subject", 's'},
	HdrEvent:              {"Event", 'o'},
	HdrReferTo:            {"Refer-To", 'r'},
	HdrAllowEvents:        {"Allow-Events", 'u'},
	HdrSessionExpires:     {"Session-Expires", 'x'},
	HdrIdentity:           {"Identity", 'y'},
	HdrReferredBy:         {"Referred-By", 'b'},
	HdrAcceptContact:      {"Accept-Contact", 'a'},
	HdrRejectContact:      {"Reject-Contact", 'j'},
	HdrRequestDisposition: {"Request-Disposition", 'd'},
	HdrIdentityInfo:       {"Identity-Info", 'n'},
	HdrUserAgent:          {"User-Agent", 0},
	HdrServer:             {"Server", 0},
	HdrFlowTimer:          {"Flow-Timer", 0},
}

// compactKinds maps a lower-case compact letter to its kind.
var compactKinds = func() (t [26]HeaderKind) {
	for k, n := range headerNames {
		if n.compact != 0 {
			t[n.compact-'a'] = HeaderKind(k)
		}
	}
	return t
}()

// String returns the full header name ("" for HdrOther).
func (k HeaderKind) String() string {
	if k < numHeaderKinds {
		return headerNames[k].name
	}
	return ""
}

// Compact returns the compact form letter of k, or 0 when it has none.
func (k HeaderKind) Compact() byte {
	if k < numHeaderKinds {
		return headerNames[k].compact
	}
	return 0
}

// KindOf returns the kind of the header called name (full or compact form,
// any case). name is expected to be a header name as scanned, made of token
// characters; other bytes may compare equal to a letter or '-'.
func KindOf(name []byte) HeaderKind {
	if len(name) == 1 {
		c := lower(name[0])
		if 'a' <= c && c <= 'z' {
			return compactKinds[c-'a']
		}
		return HdrOther
	}
	switch len(name)<<8 | int(name[0]|0x20) {
	case 2<<8 | 't':
		if equalLowerName(name, "to") {
			return HdrTo
		}
	case 3<<8 | 'v':
		if equalLowerName(name, "via") {
			return HdrVia
		}
	case 4<<8 | 'c':
		if equalLowerName(name, "cseq") {
			return HdrCSeq
		}
	case 4<<8 | 'f':
		if equalLowerName(name, "from") {
			return HdrFrom
		}
	case 4<<8 | 'p':
		if equalLowerName(name, "path") {
			return HdrPath
		}
	case 5<<8 | 'e':
		if equalLowerName(name, "event") {
			return HdrEvent
		}
	case 5<<8 | 'r':
		if equalLowerName(name, "route") {
			return HdrRoute
		}
	case 6<<8 | 's':
		if equalLowerName(name, "server") {
			return HdrServer
		}
	case 7<<8 | 'c':
		if equalLowerName(name, "contact") {
			return HdrContact
		}
		if equalLowerName(name, "call-id") {
			return HdrCallID
		}
	case 7<<8 | 'e':
		if equalLowerName(name, "expires") {
			return HdrExpires
		}
	case 7<<8 | 'r':
		if equalLowerName(name, "require") {
			return HdrRequire
		}
	case 7<<8 | 's':
		if equalLowerName(name, "subject") {
			return HdrSubject
		}
	case 8<<8 | 'i':
		if equalLowerName(name, "identity") {
			return HdrIdentity
		}
	case 8<<8 | 'r':
		if equalLowerName(name, "refer-to") {
			return HdrReferTo
		}
	case 9<<8 | 's':
		if equalLowerName(name, "supported") {
			return HdrSupported
		}
	case 10<<8 | 'f':
		if equalLowerName(name, "flow-timer") {
			return HdrFlowTimer
		}
	case 10<<8 | 'u':
		if equalLowerName(name, "user-agent") {
			return HdrUserAgent
		}
	case 11<<8 | 'r':
		if equalLowerName(name, "referred-by") {
			return HdrReferredBy
		}
	case 12<<8 | 'a':
		if equalLowerName(name, "allow-events") {
			return HdrAllowEvents
		}
	case 12<<8 | 'c':
		if equalLowerName(name, "content-type") {
			return HdrContentType
		}
	case 12<<8 | 'm':
		if equalLowerName(name, "max-forwards") {
			return HdrMaxForwards
		}
	case 12<<8 | 'r':
		if equalLowerName(name, "record-route") {
			return HdrRecordRoute
		}
	case 13<<8 | 'i':
		if equalLowerName(name, "identity-info") {
			return HdrIdentityInfo
		}
	case 14<<8 | 'a':
		if equalLowerName(name, "accept-contact") {
			return HdrAcceptContact
		}
	case 14<<8 | 'c':
		if equalLowerName(name, "content-length") {
			return HdrContentLength
		}
	case 14<<8 | 'r':
		if equalLowerName(name, "reject-contact") {
			return HdrRejectContact
		}
	case 15<<8 | 's':
		if equalLowerName(name, "session-expires") {
			return HdrSessionExpires
		}
	case 16<<8 | 'c':
		if equalLowerName(name, "content-encoding") {
			return HdrContentEncoding
		}
	case 19<<8 | 'r':
		if equalLowerName(name, "request-disposition") {
			return HdrRequestDisposition
		}
	}
	return HdrOther
}

// equalLowerName compares a header name with a lower-case known name made
// of letters and '-': setting bit 0x20 lower-cases letters and leaves '-'.
// Names of 8 bytes or more are compared a word at a time.
func equalLowerName(b []byte, n string) bool {
	if len(b) != len(n) {
		return false
	}
	if len(b) >= 8 {
		const fold = 0x2020202020202020
		k := len(b) - 8
		return load64(b, 0)|fold == load64s(n, 0) && load64(b, k)|fold == load64s(n, k)
	}
	for i := 0; i < len(b); i++ {
		if b[i]|0x20 != n[i] {
			return false
		}
	}
	return true
}

func load64(b []byte, i int) uint64 {
	b = b[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func load64s(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold compares ASCII case-insensitively.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

// isToken reports whether c is an RFC 3261 token character.
func isToken(c byte) bool {
	return tokenTable[c]
}

var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-.!%*_+`'~" {
		t[c] = true
	}
	return t
}()

func isWS(c byte) bool { return c == ' ' || c == '\t' }

// isLWS also counts CR and LF: inside a header value they only occur in
// folded lines, where they are linear white space.
func isLWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// runEnd returns the first offset in [i, end) whose byte is not in t, or
// end. Eight bytes are looked up per step and their verdicts folded into
// one word, so the run's end is found by counting bits rather than by a
// branch per byte that mispredicts where each short run (a header or
// parameter name) happens to stop.
func runEnd(t *byteSet, b []byte, i, end int) int {
	if end > len(b) {
		end = len(b)
	}
	for i+8 <= end {
		c := b[i : i+8 : i+8]
		m := uint(t[c[0]]) | uint(t[c[1]])<<1 | uint(t[c[2]])<<2 | uint(t[c[3]])<<3 |
			uint(t[c[4]])<<4 | uint(t[c[5]])<<5 | uint(t[c[6]])<<6 | uint(t[c[7]])<<7
		if m != 0xff {
			return i + bits.TrailingZeros(^m)
		}
		i += 8
	}
	for i < end && t[b[i]] != 0 {
		i++
	}
	return i
}

// byteSet holds 1 for each byte value in a set, 0 for the others: a
// [256]bool table as numbers, which runEnd folds without branches.
type byteSet [256]uint8

func setOf(t *[256]bool) (s byteSet) {
	for c, in := range t {
		if in {
			s[c] = 1
		}
	}
	return s
}

// The byte sets of runEnd.
var (
	tokenSet = setOf(&tokenTable)
	hostSet  = setOf(&hostChar)
	paramSet = setOf(&paramChar)
)
