package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/ipaddr"
	"github.com/sipnat/sipnat/nat"
)

// Report is what natcheck tested and found; -json prints it. Every field
// that was not tested is absent (nil or empty) rather than "no", and
// durations are milliseconds. The schema is in doc.go.
type Report struct {
	Tool       string    `json:"tool"`
	Version    string    `json:"version"`
	Time       time.Time `json:"time"`
	SelfTest   bool      `json:"self_test"`
	Local      string    `json:"local"`
	DurationMS int64     `json:"duration_ms"`

	Servers []ServerReport `json:"servers"`
	UDP     string         `json:"udp"` // "works" or "blocked" (no server answered)
	NAT     *NATReport     `json:"nat,omitempty"`
	Gateway *GatewayReport `json:"gateway,omitempty"`
	CGNAT   *Finding       `json:"cgnat,omitempty"`
	Double  *Finding       `json:"double_nat,omitempty"`
	IPv6    *IPv6Report    `json:"ipv6,omitempty"`
	NAT64   *NAT64Report   `json:"nat64,omitempty"`
	SIP     *SIPVerdict    `json:"sip,omitempty"`
	Errors  []string       `json:"errors,omitempty"`
	// NotTested names what was skipped, and why.
	NotTested []string `json:"not_tested,omitempty"`
}

// ServerReport is one STUN server's answer to a plain Binding request.
type ServerReport struct {
	Server string         `json:"server"` // as given
	Addr   netip.AddrPort `json:"addr,omitzero"`
	Public netip.AddrPort `json:"public,omitzero"` // the socket's address as this server saw it
	RTTMS  float64        `json:"rtt_ms,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// NATReport is the behaviour discovery on the socket (RFC 5780).
type NATReport struct {
	Method    nat.Method      `json:"method"`
	Server    netip.AddrPort  `json:"server"`
	Public    netip.AddrPort  `json:"public"`
	Mapping   nat.Behavior    `json:"mapping"`
	Filtering nat.Behavior    `json:"filtering"`
	Classic   nat.ClassicType `json:"classic"`
	// Hairpin and PortPreserved are absent when not tested.
	Hairpin       *bool `json:"hairpin,omitempty"`
	PortPreserved *bool `json:"port_preserved,omitempty"`
	// LifetimeMS is the longest idle time the binding survived,
	// LifetimeGoneMS the shortest after which it was gone (0: none up to
	// LifetimeMS, a lower bound); both absent when not measured.
	LifetimeMS     int64  `json:"lifetime_ms,omitempty"`
	LifetimeGoneMS int64  `json:"lifetime_gone_ms,omitempty"`
	LifetimeNote   string `json:"lifetime_note,omitempty"`
}

// GatewayReport is what the gateway answered to UPnP IGD, NAT-PMP and PCP,
// and the test mapping made and deleted.
type GatewayReport struct {
	Gateway  netip.Addr     `json:"gateway,omitzero"`
	PCP      bool           `json:"pcp"`
	NATPMP   bool           `json:"natpmp"`
	UPnP     bool           `json:"upnp"`
	External netip.Addr     `json:"external,omitzero"` // the WAN address it reports
	Mapped   netip.AddrPort `json:"test_mapping,omitzero"`
	Via      string         `json:"test_mapping_via,omitempty"`
	Deleted  bool           `json:"test_mapping_deleted"`
	Errors   []string       `json:"errors,omitempty"`
}

// Finding is a yes/no that was tested, with why.
type Finding struct {
	Yes    bool   `json:"yes"`
	Reason string `json:"reason"`
}

// IPv6Report is the IPv6 line: the host's global addresses and, with an
// IPv6 server, what it saw.
type IPv6Report struct {
	HostAddrs  []netip.Addr   `json:"host_addrs,omitempty"`
	Server     netip.AddrPort `json:"server,omitzero"`
	Public     netip.AddrPort `json:"public,omitzero"`
	Translated *bool          `json:"translated,omitempty"` // the server saw another address (NAT66/NPTv6)
	// Translation says how: "no translation", "NPTv6" or "NAT66"
	// (ipaddr.TranslationOf).
	Translation ipaddr.Translation `json:"translation,omitempty"`
	// Method, Mapping and Filtering are the RFC 4787 answers over IPv6
	// (nat.Discover): mapping "none" with address-and-port-dependent
	// filtering is an RFC 6092 stateful firewall.
	Method    nat.Method   `json:"method,omitempty"`
	Mapping   nat.Behavior `json:"mapping,omitzero"`
	Filtering nat.Behavior `json:"filtering,omitzero"`
	// LifetimeMS is the longest idle time the IPv6 flow's state survived
	// in the firewall, LifetimeGoneMS the shortest after which it was gone
	// (with -lifetime; absent otherwise).
	LifetimeMS     int64  `json:"lifetime_ms,omitempty"`
	LifetimeGoneMS int64  `json:"lifetime_gone_ms,omitempty"`
	Note           string `json:"note,omitempty"`
}

// ipv6Filtering says in words what a filtering behaviour lets in over IPv6.
func ipv6Filtering(b nat.Behavior) string {
	switch b {
	case nat.None:
		return "none: unsolicited packets come in (no firewall on the path)"
	case nat.EndpointIndependent:
		return "endpoint-independent: once the host sent out, anyone may send to that port"
	case nat.AddressDependent:
		return "address-dependent: only hosts the host sent to get in"
	case nat.AddressAndPortDependent:
		return "address-and-port-dependent: only the address and port the host sent to get in (an RFC 6092 stateful firewall: keep-alives or a pinhole)"
	}
	return b.String()
}

// NAT64Report is what discovery.DetectNAT64 found on an IPv6-only test:
// the prefix and its source (dns64: RFC 7050, pcp: RFC 7225), or why none.
type NAT64Report struct {
	Prefixes []netip.Prefix        `json:"prefixes,omitempty"`
	From     discovery.NAT64Source `json:"from,omitempty"`
	Note     string                `json:"note,omitempty"`
}

// SIPVerdict is what a SIP UA here needs, from agent.Decide.
type SIPVerdict struct {
	Decision      agent.Decision   `json:"decision"`
	ContactFrom   agent.Source     `json:"contact_from"`
	Contact       netip.AddrPort   `json:"contact"`
	KeepAliveMS   int64            `json:"keepalive_ms,omitempty"`
	KeepAliveNote string           `json:"keepalive_note,omitempty"`
	Relay         bool             `json:"relay"`
	IncomingCalls agent.Prediction `json:"incoming_calls"`
	TwoWayAudio   agent.Prediction `json:"two_way_audio"`
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// lifetimeText says how long an idle binding (or a firewall's state) lived:
// kept is the longest idle time it survived, gone the shortest after which
// it was gone (0: none seen, kept is a lower bound); milliseconds.
func lifetimeText(kept, gone int64) string {
	if gone > 0 {
		return fmt.Sprintf("%v (gone after %v idle)", time.Duration(kept)*time.Millisecond, time.Duration(gone)*time.Millisecond)
	}
	return fmt.Sprintf("at least %v", time.Duration(kept)*time.Millisecond)
}

// writeText prints the report for a person: one line per finding.
func (r *Report) writeText(w io.Writer) {
	line := func(k, format string, a ...any) { fmt.Fprintf(w, "%-18s %s\n", k+":", fmt.Sprintf(format, a...)) }
	if r.SelfTest {
		fmt.Fprintln(w, "SELF-TEST: against natcheck's own STUN server on 127.0.0.1/127.0.0.2; it says nothing about your network. Give -server host:port to test it.")
	}
	line("natcheck", "%s, %s, took %v", r.Version, r.Time.Format(time.RFC3339), time.Duration(r.DurationMS)*time.Millisecond)
	line("local socket", "%s", r.Local)
	for _, s := range r.Servers {
		if s.Error != "" {
			line("server", "%s: %s", s.Server, s.Error)
			continue
		}
		name := s.Server
		if name != s.Addr.String() && !r.SelfTest {
			name += " (" + s.Addr.String() + ")"
		}
		line("server", "%s: public %s, RTT %.1f ms", name, s.Public, s.RTTMS)
	}
	line("UDP", "%s", r.UDP)
	if n := r.NAT; n != nil {
		line("method", "%s (server %s)", n.Method, n.Server)
		line("public address", "%s", n.Public)
		line("mapping", "%s", n.Mapping)
		line("filtering", "%s", n.Filtering)
		line("RFC 3489 type", "%s", n.Classic)
		if n.Hairpin != nil {
			line("hairpin", "%s", yesNo(*n.Hairpin))
		}
		if n.PortPreserved != nil {
			line("port preserved", "%s", yesNo(*n.PortPreserved))
		}
		switch {
		case n.LifetimeMS > 0:
			line("binding lifetime", "%s", lifetimeText(n.LifetimeMS, n.LifetimeGoneMS))
		case n.LifetimeNote != "":
			line("binding lifetime", "%s", n.LifetimeNote)
		}
	}
	if g := r.Gateway; g != nil {
		var ps []string
		for _, p := range []struct {
			ok   bool
			name string
		}{{g.PCP, "PCP"}, {g.NATPMP, "NAT-PMP"}, {g.UPnP, "UPnP IGD"}} {
			if p.ok {
				ps = append(ps, p.name)
			}
		}
		if len(ps) == 0 {
			ps = []string{"none answered"}
		}
		s := fmt.Sprintf("gateway %s: %s", g.Gateway, strings.Join(ps, ", "))
		if g.External.IsValid() {
			s += fmt.Sprintf("; external address %s", g.External)
		}
		if g.Mapped.IsValid() {
			s += fmt.Sprintf("; test mapping %s via %s, deleted: %s", g.Mapped, g.Via, yesNo(g.Deleted))
		}
		line("port mapping", "%s", s)
		for _, e := range g.Errors {
			line("port mapping", "%s", e)
		}
	}
	if r.CGNAT != nil {
		line("CGNAT", "%s (%s)", yesNo(r.CGNAT.Yes), r.CGNAT.Reason)
	}
	if r.Double != nil {
		line("double NAT", "%s (%s)", yesNo(r.Double.Yes), r.Double.Reason)
	}
	if v := r.IPv6; v != nil {
		s := v.Note
		if v.Public.IsValid() {
			s = fmt.Sprintf("server %s sees %s", v.Server, v.Public)
			if v.Method != "" {
				s += fmt.Sprintf(" (%s)", v.Method)
			}
		}
		line("IPv6", "%s", s)
		if v.Mapping != nat.Unknown {
			m := "no translation (the host's own address)"
			if v.Mapping != nat.None {
				m = fmt.Sprintf("%s (%s)", v.Translation, v.Mapping)
			}
			line("IPv6 mapping", "%s", m)
		}
		if v.Filtering != nat.Unknown {
			line("IPv6 filtering", "%s", ipv6Filtering(v.Filtering))
		}
		if v.LifetimeMS > 0 {
			line("IPv6 state", "%s", lifetimeText(v.LifetimeMS, v.LifetimeGoneMS))
		}
	}
	if n := r.NAT64; n != nil {
		if len(n.Prefixes) > 0 {
			line("NAT64", "prefix %s (from %s)", n.Prefixes[0], n.From)
		} else {
			line("NAT64", "none found: %s", n.Note)
		}
	}
	if v := r.SIP; v != nil {
		line("SIP", "%s: Contact from %s (%s)", v.Decision, v.ContactFrom, v.Contact)
		if v.KeepAliveMS > 0 {
			line("SIP keep-alive", "every %v: %s", time.Duration(v.KeepAliveMS)*time.Millisecond, v.KeepAliveNote)
		}
		line("SIP relay", "%s", map[bool]string{true: "needed", false: "not needed"}[v.Relay])
		line("incoming calls", "%s", v.IncomingCalls)
		line("two-way audio", "%s", v.TwoWayAudio)
	}
	for _, n := range r.NotTested {
		line("not tested", "%s", n)
	}
	for _, e := range r.Errors {
		line("error", "%s", e)
	}
}
