package sdp

import (
	"net/netip"
	"strconv"
	"strings"

	psdp "github.com/pion/sdp/v3"

	"github.com/sipnat/sipnat/ipaddr"
)

// This file is the structured door: the same tests and the same rewrite as
// Check and AppendRewrite, on a *sdp.SessionDescription from
// github.com/pion/sdp/v3 that the caller already holds. It reads addresses
// with the same parser as the byte path, so both doors agree on what is an
// address. Findings from this door carry Line 0.

// CheckSession runs the NAT tests over a parsed session description.
func CheckSession(sd *psdp.SessionDescription) Result {
	var r Result
	if sd == nil {
		return r
	}
	if ip, ok := parseIP([]byte(sd.Origin.UnicastAddress)); ok && ipaddr.IsPrivate(ip) {
		r.add(Finding{Test: PrivateOrigin, Media: -1, Addr: ip})
	}
	ice := false
	checkConn(&r, sd.ConnectionInformation, -1)
	checkAttrs(&r, sd.Attributes, -1, &ice)
	for i, md := range sd.MediaDescriptions {
		if md == nil {
			continue
		}
		checkConn(&r, md.ConnectionInformation, i)
		checkAttrs(&r, md.Attributes, i, &ice)
	}
	return r
}

// connIP returns the IP address of a c= address string ("10.0.0.1" or
// "233.252.0.1/127") and the suffix after it.
func connIP(s string) (ip []byte, suffix string) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return []byte(s[:i]), s[i:]
	}
	return []byte(s), ""
}

func checkConn(r *Result, c *psdp.ConnectionInformation, media int) {
	if c == nil || c.Address == nil {
		return
	}
	b, _ := connIP(c.Address.Address)
	if ip, ok := parseIP(b); ok && ipaddr.IsPrivate(ip) {
		t := PrivateSessionConn
		if media >= 0 {
			t = PrivateMediaConn
		}
		r.add(Finding{Test: t, Media: media, Addr: ip})
	}
}

func checkAttrs(r *Result, attrs []psdp.Attribute, media int, ice *bool) {
	for _, a := range attrs {
		switch {
		case a.Key == "rtcp":
			v := []byte(a.Value)
			if rv, ok := parseRTCPValue(v); ok && rv.hasAddr {
				if ai := classify(v[rv.addr.s:rv.addr.e]); ai.priv {
					r.add(Finding{Test: PrivateRTCP, Media: media, Addr: ai.ip})
				}
			}
		case !*ice && (a.Key == "candidate" || a.Key == "ice-ufrag"):
			*ice = true
			r.add(Finding{Test: ICE, Media: media})
		}
	}
}

// RewriteSession rewrites sd in place with the same rules as AppendRewrite
// and returns the same Result (findings without line numbers). Marshalling
// sd afterwards gives what AppendRewrite gives, modulo the changes pion's
// own round trip makes (see the package documentation). On error sd is not
// changed.
func RewriteSession(sd *psdp.SessionDescription, opts *Options) (Result, error) {
	pub, err := opts.check()
	if err != nil {
		return Result{}, err
	}
	if sd == nil {
		return Result{}, &SyntaxError{Field: "v=", Reason: "nil session description"}
	}
	for _, md := range sd.MediaDescriptions {
		if md == nil || md.MediaName.Port.Value < 0 || md.MediaName.Port.Value > 65535 {
			return Result{}, &SyntaxError{Field: "m=", Reason: "missing media or port out of range"}
		}
	}
	res := CheckSession(sd)
	if res.Tests&ICE != 0 && !opts.AllowICE {
		res.SkippedICE = true
		return res, nil
	}
	s := structRewriter{opts: opts, pub: pub}
	if opts.Origin {
		o := &sd.Origin
		if ip, ok := parseIP([]byte(o.UnicastAddress)); ok && want(ip, pub, opts.All) {
			if !familyMatches([]byte(o.AddressType), pub) {
				o.AddressType = addrType(pub)
			}
			o.UnicastAddress = pub.String()
			s.edits++
		}
	}
	sessionActive := s.rewriteConn(sd.ConnectionInformation)
	for _, md := range sd.MediaDescriptions {
		s.rewriteMedia(md, sessionActive)
	}
	if opts.Marker != "" && s.edits > 0 {
		ma := markerAttr(opts.Marker)
		seen := false
		for _, a := range sd.Attributes {
			if a.Key == ma.Key && a.Value == ma.Value {
				seen = true
				break
			}
		}
		if !seen {
			sd.Attributes = append(sd.Attributes, ma)
			s.edits++
		}
	}
	res.Edits = s.edits
	return res, nil
}

// markerAttr splits an "a=key:value" marker line the way pion does.
func markerAttr(m string) psdp.Attribute {
	v := strings.TrimPrefix(m, "a=")
	if i := strings.IndexByte(v, ':'); i > 0 {
		return psdp.Attribute{Key: v[:i], Value: v[i+1:]}
	}
	return psdp.Attribute{Key: v}
}

type structRewriter struct {
	opts  *Options
	pub   netip.Addr
	edits int
}

// rewriteConn rewrites c's address if wanted and reports whether it did.
func (s *structRewriter) rewriteConn(c *psdp.ConnectionInformation) bool {
	if c == nil || c.Address == nil {
		return false
	}
	b, suffix := connIP(c.Address.Address)
	ip, ok := parseIP(b)
	if !ok || !want(ip, s.pub, s.opts.All) {
		return false
	}
	if !familyMatches([]byte(c.AddressType), s.pub) {
		c.AddressType = addrType(s.pub)
	}
	c.Address.Address = s.pub.String() + suffix
	s.edits++
	return true
}

func (s *structRewriter) mapPort(p uint16) (uint16, bool) {
	if q, ok := s.opts.Ports[p]; ok && q != p {
		return q, true
	}
	return p, false
}

func (s *structRewriter) rewriteMedia(md *psdp.MediaDescription, sessionActive bool) {
	port := uint16(md.MediaName.Port.Value)
	if port == 0 {
		return
	}
	active := sessionActive
	if md.ConnectionInformation != nil {
		active = s.rewriteConn(md.ConnectionInformation)
	}
	if active && s.opts.Ports != nil {
		if q, ok := s.mapPort(port); ok {
			md.MediaName.Port.Value = int(q)
			s.edits++
		}
	}
	hasRTCP, rtcpMux := false, false
	for i := range md.Attributes {
		a := &md.Attributes[i]
		switch a.Key {
		case "rtcp-mux":
			rtcpMux = true
		case "rtcp":
			hasRTCP = true
			s.rewriteRTCP(a, active)
		}
	}
	if !active || hasRTCP || rtcpMux || s.opts.Ports == nil || port == 65535 {
		return
	}
	rtp, _ := s.mapPort(port)
	if rtcp, ok := s.opts.Ports[port+1]; ok && int(rtcp) != int(rtp)+1 {
		md.Attributes = append(md.Attributes, psdp.Attribute{Key: "rtcp", Value: strconv.Itoa(int(rtcp))})
		s.edits++
	}
}

// rewriteRTCP rewrites an a=rtcp value with the byte path's own code.
func (s *structRewriter) rewriteRTCP(a *psdp.Attribute, active bool) {
	v := []byte(a.Value)
	rv, ok := parseRTCPValue(v)
	if !ok {
		return
	}
	w := rewriter{body: v, pub: s.pub, ports: s.opts.Ports, all: s.opts.All}
	changed := false
	if active && s.opts.Ports != nil {
		if q, ok := w.mapPort(rv.portNum); ok {
			w.writePort(rv.port, q)
			changed = true
		}
	}
	if rv.hasAddr && w.addr(v[rv.addr.s:rv.addr.e]).want {
		w.rewriteAddr(0, rv.typ, rv.addr)
		changed = true
	}
	if changed {
		w.flush(len(v))
		a.Value = string(w.dst)
		s.edits++
	}
}
