package rtpengine

import (
	"net/netip"
	"strconv"
)

// Command is an ng protocol command.
type Command string

// The commands this package speaks.
const (
	Ping   Command = "ping"   // is the instance alive? (answer "pong")
	Offer  Command = "offer"  // an SDP offer: allocate ports, return the SDP to forward
	Answer Command = "answer" // the SDP answer to an earlier offer
	Delete Command = "delete" // end the call (or one branch of it)
	Query  Command = "query"  // a call's state and packet counters
)

// ICE says what the relay does with ICE attributes in the SDP.
type ICE string

// The ICE options; the empty value leaves rtpengine's default.
const (
	ICERemove ICE = "remove" // strip candidates: the relay is the only path
	ICEForce  ICE = "force"  // offer the relay's own candidates
)

// Family is an address family the SDP's recipient expects.
type Family string

// The address families; the empty value keeps the SDP's own.
const (
	IPv4 Family = "IP4"
	IPv6 Family = "IP6"
)

// Options are the flags a NAT edge sets on offer and answer. The zero value
// sends no flag and lets rtpengine's configuration decide.
type Options struct {
	// SIPSource ignores the address in the SDP and sends media to the
	// message's source address (Request.Source, "received-from") with the
	// SDP's port, until symmetric RTP shows the real one ("SIP-source-address").
	// Use it for a sender behind NAT, whose SDP carries a private address.
	SIPSource bool
	// TrustAddress uses the address in the SDP as is ("trust-address"); for a
	// sender on a public address.
	TrustAddress bool
	// Symmetric learns the endpoint's address from the media it sends
	// ("symmetric"). It is the default of rtpengine since long, and version
	// 10 logs the flag as unknown; set it for older relays. Asymmetric turns
	// learning off for a UA that sends from another port than it receives on.
	Symmetric, Asymmetric bool
	// ReplaceOrigin and ReplaceSessionConnection also rewrite the o= line and
	// the session-level c= line ("replace": "origin", "session-connection").
	ReplaceOrigin, ReplaceSessionConnection bool
	// ICE removes or forces ICE candidates; "" leaves them.
	ICE ICE
	// Direction names the relay's logical interfaces for the sender and the
	// recipient (e.g. "internal", "external"); both or neither.
	Direction [2]string
	// Family is the address family the SDP's recipient speaks; "" keeps the
	// sender's.
	Family Family
}

// Request is one ng command. Byte slices are only read during the call.
type Request struct {
	Command   Command // offer, answer, delete, query or ping
	CallID    []byte  // the SIP Call-ID
	FromTag   []byte  // the From tag
	ToTag     []byte  // answer, and delete of one dialog
	ViaBranch []byte  // optional: tells the branches of a forked call apart
	SDP       []byte  // offer and answer
	// Source is the address the SIP message came from; with
	// Options.SIPSource it is sent as "received-from".
	Source  netip.Addr
	Options Options
}

// AppendRequest appends the ng message for r with the given cookie:
// "<cookie> <bencode dictionary>".
func AppendRequest(dst []byte, cookie []byte, r *Request) []byte {
	dst = append(append(dst, cookie...), ' ', 'd')
	dst = AppendString(dst, "command")
	dst = AppendString(dst, string(r.Command))
	if r.Command == Ping {
		return append(dst, 'e')
	}
	dst = appendKV(dst, "call-id", r.CallID)
	dst = appendKV(dst, "from-tag", r.FromTag)
	dst = appendKV(dst, "to-tag", r.ToTag)
	dst = appendKV(dst, "via-branch", r.ViaBranch)
	if r.Command == Offer || r.Command == Answer {
		dst = appendKV(dst, "sdp", r.SDP)
		dst = appendOptions(dst, &r.Options, r.Source)
	}
	return append(dst, 'e')
}

func appendKV(dst []byte, k string, v []byte) []byte {
	if len(v) == 0 {
		return dst
	}
	return AppendBytes(AppendString(dst, k), v)
}

func appendOptions(dst []byte, o *Options, src netip.Addr) []byte {
	var flags [4]string
	fl := flags[:0]
	if o.SIPSource {
		fl = append(fl, "SIP-source-address")
	}
	if o.TrustAddress {
		fl = append(fl, "trust-address")
	}
	if o.Symmetric {
		fl = append(fl, "symmetric")
	}
	if o.Asymmetric {
		fl = append(fl, "asymmetric")
	}
	if len(fl) > 0 {
		dst = append(AppendString(dst, "flags"), 'l')
		for _, f := range fl {
			dst = AppendString(dst, f)
		}
		dst = append(dst, 'e')
	}
	if o.ReplaceOrigin || o.ReplaceSessionConnection {
		dst = append(AppendString(dst, "replace"), 'l')
		if o.ReplaceOrigin {
			dst = AppendString(dst, "origin")
		}
		if o.ReplaceSessionConnection {
			dst = AppendString(dst, "session-connection")
		}
		dst = append(dst, 'e')
	}
	if o.ICE != "" {
		dst = AppendString(AppendString(dst, "ICE"), string(o.ICE))
	}
	if o.Direction[0] != "" || o.Direction[1] != "" {
		dst = append(AppendString(dst, "direction"), 'l')
		dst = append(AppendString(AppendString(dst, o.Direction[0]), o.Direction[1]), 'e')
	}
	if o.Family != "" {
		dst = AppendString(AppendString(dst, "address family"), string(o.Family))
	}
	if o.SIPSource && src.IsValid() {
		src = src.Unmap()
		fam := IPv4
		if src.Is6() {
			fam = IPv6
		}
		dst = append(AppendString(dst, "received-from"), 'l')
		dst = AppendString(dst, string(fam))
		var ab [64]byte
		dst = AppendBytes(dst, src.AppendTo(ab[:0]))
		dst = append(dst, 'e')
	}
	return dst
}

// appendCookie appends a cookie made of prefix and a counter.
func appendCookie(dst []byte, prefix string, n uint64) []byte {
	return strconv.AppendUint(append(dst, prefix...), n, 36)
}
