package sipmsg

import (
	"encoding/binary"
	"math/bits"
	"strings"
)

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
	if len(name) <= 1 {
		if len(name) == 0 {
			return HdrOther
		}
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

// kindIs reports whether KindOf(name) == k for a known kind k, comparing
// name with k's own full and compact names only.
func kindIs(name []byte, k HeaderKind) bool {
	if len(name) == 1 {
		c := headerNames[k].compact
		return c != 0 && name[0]|0x20 == c
	}
	return equalLowerName(name, lowerNames[k])
}

// lowerNames holds the full names of the kinds in lower case.
var lowerNames = func() (t [numHeaderKinds]string) {
	for k, n := range headerNames {
		t[k] = strings.ToLower(n.name)
	}
	return t
}()

// equalLowerName compares a header name with a lower-case known name made
// of letters and '-': setting bit 0x20 lower-cases letters and leaves '-'.
// Names are compared in two overlapping words (of 8, 4 or 2 bytes) and, past
// 16 bytes, the words between.
func equalLowerName(b []byte, n string) bool {
	if len(b) != len(n) {
		return false
	}
	switch {
	case len(b) >= 8:
		const fold = 0x2020202020202020
		k := len(b) - 8
		for i := 8; i < k; i += 8 {
			if load64(b, i)|fold != load64s(n, i) {
				return false
			}
		}
		return load64(b, 0)|fold == load64s(n, 0) && load64(b, k)|fold == load64s(n, k)
	case len(b) >= 4:
		const fold = 0x20202020
		k := len(b) - 4
		return binary.LittleEndian.Uint32(b)|fold == load32s(n, 0) &&
			binary.LittleEndian.Uint32(b[k:])|fold == load32s(n, k)
	case len(b) >= 2:
		k := len(b) - 2
		return binary.LittleEndian.Uint16(b)|0x2020 == uint16(n[0])|uint16(n[1])<<8 &&
			binary.LittleEndian.Uint16(b[k:])|0x2020 == uint16(n[k])|uint16(n[k+1])<<8
	case len(b) == 1:
		return b[0]|0x20 == n[0]
	}
	return true
}

func load32s(s string, i int) uint32 {
	s = s[i : i+4]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
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

func isWS(c byte) bool { return wsTable[c]&1 != 0 }

// isLWS also counts CR and LF: inside a header value they only occur in
// folded lines, where they are linear white space.
func isLWS(c byte) bool { return wsTable[c] != 0 }

// wsTable has bit 1 for SP and HT (isWS) and bit 2 for CR and LF (isLWS
// counts both): one load instead of a compare per character.
var wsTable = [256]uint8{' ': 1, '\t': 1, '\r': 2, '\n': 2}

// runEnd returns the first offset in [i, end) whose byte is not in t, or
// end (i when i >= end). Eight bytes are looked up per step and their
// verdicts folded into one word, so the run's end is found by counting bits
// rather than by a branch per byte that mispredicts where each short run (a
// header or parameter name) happens to stop. The step reads past end while
// b has the bytes and clamps the result, so that a run near the end of a
// value needs no byte loop either.
func runEnd(t *byteSet, b []byte, i, end int) int {
	if end > len(b) {
		end = len(b)
	}
	if i >= end {
		return i
	}
	for i+8 <= len(b) {
		c := b[i : i+8 : i+8]
		m := uint(t[c[0]]) | uint(t[c[1]])<<1 | uint(t[c[2]])<<2 | uint(t[c[3]])<<3 |
			uint(t[c[4]])<<4 | uint(t[c[5]])<<5 | uint(t[c[6]])<<6 | uint(t[c[7]])<<7
		if m != 0xff {
			return min(i+bits.TrailingZeros(^m), end)
		}
		i += 8
		if i >= end {
			return end
		}
	}
	for i < end && t[b[i]] != 0 {
		i++
	}
	return i
}

// tokenEnd is runEnd(&tokenSet, b, i, end) for header names, which are
// mostly letters and '-': eight bytes at a time are tested for those with
// word arithmetic, and the table takes over only at a byte that is neither
// (a ':' ends the name there; a digit or another token character goes on).
func tokenEnd(b []byte, i, end int) int {
	if end > len(b) {
		end = len(b)
	}
	if i >= end {
		return i
	}
	for i+8 <= len(b) {
		ok := letterOrDash(binary.LittleEndian.Uint64(b[i:]))
		if ok == highBits {
			i += 8
			if i >= end {
				return end
			}
			continue
		}
		i += bits.TrailingZeros64(^ok&highBits) >> 3
		if i >= end {
			return end
		}
		if tokenSet[b[i]] == 0 {
			return i
		}
		break
	}
	return runEnd(&tokenSet, b, i, end)
}

const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// letterOrDash returns, for each byte of x, 0x80 when it is an ASCII
// letter or '-' and 0 otherwise. The sums stay below 0x100 in every byte
// (all operands are below 0x80), so no carry crosses into the next byte.
func letterOrDash(x uint64) uint64 {
	y := (x | 0x20*lowBits) &^ highBits // letters in lower case, 7 bits
	letters := (y + (0x80-'a')*lowBits) &^ (y + (0x7f-'z')*lowBits)
	d := x ^ '-'*lowBits
	dash := ^(((d &^ highBits) + 0x7f*lowBits) | d) // high bit: the byte of d is zero
	return (letters | dash) &^ x & highBits
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
