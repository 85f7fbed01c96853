package sdp

import (
	"encoding/json"
	"iter"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Tests is a set of NAT tests that fired on an SDP body.
type Tests uint8

// The NAT tests. Each private-address test fires when the address is
// private by ipaddr.IsPrivate (RFC 1918, IPv6 ULA, RFC 6598, loopback,
// link-local); 0.0.0.0 (hold), multicast, public and FQDN addresses never
// fire.
const (
	PrivateSessionConn Tests = 1 << iota // session-level c= names a private address
	PrivateMediaConn                     // a media-level c= names a private address (also in a rejected, port 0, stream)
	PrivateOrigin                        // o= names a private address
	PrivateRTCP                          // a=rtcp:port IN IP4|IP6 addr (RFC 3605) names a private address
	ICE                                  // a=candidate or a=ice-ufrag present (RFC 8445/8839)
	// ConnDiffers: a session or media c= names a unicast address other
	// than the body's source (Kamailio nat_uac_test 256). Only CheckFrom
	// runs it, since only it knows the source.
	ConnDiffers

	// PrivateAny is every private-address test: the body marks its sender
	// as behind NAT.
	PrivateAny = PrivateSessionConn | PrivateMediaConn | PrivateOrigin | PrivateRTCP
)

var testNames = [...]string{"session-c", "media-c", "origin", "rtcp", "ice", "c-differs"}

// String lists the tests in the set, joined by "|" ("none" for the empty
// set), e.g. "session-c|origin".
func (t Tests) String() string {
	if t == 0 {
		return "none"
	}
	var sb strings.Builder
	for i, n := range testNames {
		if t&(1<<i) != 0 {
			if sb.Len() > 0 {
				sb.WriteByte('|')
			}
			sb.WriteString(n)
		}
	}
	if rest := t &^ (1<<len(testNames) - 1); rest != 0 {
		if sb.Len() > 0 {
			sb.WriteByte('|')
		}
		sb.WriteString("0x" + strconv.FormatUint(uint64(rest), 16))
	}
	return sb.String()
}

// MarshalText returns String's form, so JSON shows test names.
func (t Tests) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Finding is one place where a test fired.
type Finding struct {
	Test  Tests      `json:"test"`  // exactly one test bit
	Media int        `json:"media"` // index of the m= section (0 is the first), -1 for the session level
	Line  int        `json:"line"`  // 1-based line number in the body; 0 from the structured (pion) path
	Addr  netip.Addr `json:"addr"`  // the private address (invalid for ICE)
}

// String formats f as "origin@session line 2 192.168.1.10".
func (f Finding) String() string {
	var sb strings.Builder
	sb.WriteString(f.Test.String())
	if f.Media < 0 {
		sb.WriteString("@session")
	} else {
		sb.WriteString("@m")
		sb.WriteString(strconv.Itoa(f.Media))
	}
	if f.Line > 0 {
		sb.WriteString(" line ")
		sb.WriteString(strconv.Itoa(f.Line))
	}
	if f.Addr.IsValid() {
		sb.WriteByte(' ')
		sb.WriteString(f.Addr.String())
	}
	return sb.String()
}

// MaxFindings is how many findings a Result keeps; more set Truncated. The
// bound keeps Result a fixed-size value so the byte path does not allocate.
const MaxFindings = 8

// Result says which NAT tests fired on the input, where, and what a rewrite
// changed. The zero value is "nothing found, nothing changed".
type Result struct {
	// Tests is the set of tests that fired on the input body.
	Tests Tests `json:"tests"`
	// Edits is the number of lines a rewrite changed or added (0 from
	// Check, and 0 when a rewrite found nothing to do: the body is then
	// copied unchanged).
	Edits int `json:"edits"`
	// SkippedICE is set when the body carries ICE and Options.AllowICE was
	// false, so the rewrite left it untouched.
	SkippedICE bool `json:"skipped_ice,omitempty"`
	// Truncated is set when more than MaxFindings findings existed.
	Truncated bool `json:"truncated,omitempty"`

	findings [MaxFindings]finding
	n        int
}

// finding is a Finding as a Result keeps it: 28 bytes instead of 48, so
// the Result that every call returns by value is smaller to clear and to
// copy.
type finding struct {
	addr  [16]byte // IPv4: the first 4 bytes
	line  int32
	media int32
	test  Tests
	fam   uint8 // 0: no address, 4: IPv4, 6: IPv6
}

// Findings returns where the tests fired, in body order, for a range
// loop: for f := range res.Findings() { ... }. It does not allocate.
func (r *Result) Findings() iter.Seq[Finding] {
	return func(yield func(Finding) bool) {
		for i := range r.findings[:r.n] {
			if !yield(r.findings[i].get()) {
				return
			}
		}
	}
}

// get returns f as a Finding.
func (f *finding) get() Finding {
	out := Finding{Test: f.test, Media: int(f.media), Line: int(f.line)}
	switch f.fam {
	case 4:
		out.Addr = netip.AddrFrom4([4]byte(f.addr[:4]))
	case 6:
		out.Addr = netip.AddrFrom16(f.addr)
	}
	return out
}

// Behind reports whether a private-address test fired: the body's sender is
// behind NAT (or names a private address for some other reason).
func (r *Result) Behind() bool { return r.Tests&PrivateAny != 0 }

// Changed reports whether a rewrite changed the body.
func (r *Result) Changed() bool { return r.Edits > 0 }

// String formats the result on one line, e.g.
// "tests=session-c|origin edits=2 [origin@session line 2 192.168.1.10 ...]".
func (r Result) String() string {
	var sb strings.Builder
	sb.WriteString("tests=")
	sb.WriteString(r.Tests.String())
	sb.WriteString(" edits=")
	sb.WriteString(strconv.Itoa(r.Edits))
	if r.SkippedICE {
		sb.WriteString(" skipped-ice")
	}
	sb.WriteString(" [")
	for i := range r.findings[:r.n] {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(r.findings[i].get().String())
	}
	if r.Truncated {
		sb.WriteString(", ...")
	}
	sb.WriteByte(']')
	return sb.String()
}

// MarshalJSON encodes the exported fields and the findings.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain struct {
		Tests      Tests     `json:"tests"`
		Edits      int       `json:"edits"`
		SkippedICE bool      `json:"skipped_ice,omitempty"`
		Truncated  bool      `json:"truncated,omitempty"`
		Findings   []Finding `json:"findings"`
	}
	return json.Marshal(plain{r.Tests, r.Edits, r.SkippedICE, r.Truncated, slices.Collect(r.Findings())})
}
