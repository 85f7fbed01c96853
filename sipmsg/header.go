package sipmsg

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
// any case).
func KindOf(name []byte) HeaderKind {
	if len(name) == 1 {
		c := lower(name[0])
		if 'a' <= c && c <= 'z' {
			return compactKinds[c-'a']
		}
		return HdrOther
	}
	if len(name) >= len(kindsByLen) {
		return HdrOther
	}
	c := lower(name[0])
	for _, k := range kindsByLen[len(name)] {
		if n := headerNames[k].name; lower(n[0]) == c && equalFold(name, n) {
			return k
		}
	}
	return HdrOther
}

// kindsByLen lists the known kinds by the length of their full name.
var kindsByLen = func() (t [20][]HeaderKind) {
	for k := HdrVia; k < numHeaderKinds; k++ {
		n := len(headerNames[k].name)
		t[n] = append(t[n], k)
	}
	return t
}()

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
