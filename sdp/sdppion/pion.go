package sdppion

import (
	"strconv"
	"strings"

	psdp "github.com/pion/sdp/v3"

	"github.com/sipnat/sipnat/sdp"
)

// CheckSession runs the NAT tests of sdp.Check over a parsed session
// description. Findings carry Line 0.
func CheckSession(sd *psdp.SessionDescription) sdp.Result {
	var r sdp.Result
	if sd == nil {
		return r
	}
	if ip, priv := sdp.PrivateAddr(sd.Origin.UnicastAddress); priv {
		r.Add(sdp.Finding{Test: sdp.PrivateOrigin, Media: -1, Addr: ip})
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

// connIP splits a c= address string ("10.0.0.1" or "233.252.0.1/127") into
// the address and the suffix after it.
func connIP(s string) (ip, suffix string) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

func checkConn(r *sdp.Result, c *psdp.ConnectionInformation, media int) {
	if c == nil || c.Address == nil {
		return
	}
	text, _ := connIP(c.Address.Address)
	if ip, priv := sdp.PrivateAddr(text); priv {
		t := sdp.PrivateSessionConn
		if media >= 0 {
			t = sdp.PrivateMediaConn
		}
		r.Add(sdp.Finding{Test: t, Media: media, Addr: ip})
	}
}

func checkAttrs(r *sdp.Result, attrs []psdp.Attribute, media int, ice *bool) {
	for _, a := range attrs {
		switch {
		case a.Key == "rtcp":
			if ip, priv := sdp.PrivateRTCPAddr(a.Value); priv {
				r.Add(sdp.Finding{Test: sdp.PrivateRTCP, Media: media, Addr: ip})
			}
		case !*ice && (a.Key == "candidate" || a.Key == "ice-ufrag"):
			*ice = true
			r.Add(sdp.Finding{Test: sdp.ICE, Media: media})
		}
	}
}

// RewriteSession rewrites sd in place with the rules of sdp.AppendRewrite
// and returns the same Result (findings without line numbers). Marshalling
// sd afterwards gives what AppendRewrite gives, modulo the changes pion's
// own round trip makes (see the package documentation). On error sd is not
// changed: sdp.ErrBadOptions, or an *sdp.SyntaxError for a nil description
// or a media port out of range.
func RewriteSession(sd *psdp.SessionDescription, opts *sdp.Options) (sdp.Result, error) {
	fr, err := sdp.NewFieldRewriter(opts)
	if err != nil {
		return sdp.Result{}, err
	}
	if sd == nil {
		return sdp.Result{}, &sdp.SyntaxError{Field: "v=", Reason: "nil session description"}
	}
	for _, md := range sd.MediaDescriptions {
		if md == nil || md.MediaName.Port.Value < 0 || md.MediaName.Port.Value > 65535 {
			return sdp.Result{}, &sdp.SyntaxError{Field: "m=", Reason: "missing media or port out of range"}
		}
	}
	res := CheckSession(sd)
	if res.Tests&sdp.ICE != 0 && !opts.AllowICE {
		res.SkippedICE = true
		return res, nil
	}
	s := structRewriter{opts: opts, fr: fr}
	if opts.Origin {
		o := &sd.Origin
		if typ, addr, ok := fr.Addr(o.AddressType, o.UnicastAddress); ok {
			o.AddressType, o.UnicastAddress = typ, addr
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

// structRewriter is what RewriteSession knows while it walks sd.
type structRewriter struct {
	opts  *sdp.Options
	fr    *sdp.FieldRewriter
	edits int
}

// rewriteConn rewrites c's address if wanted and reports whether it did.
func (s *structRewriter) rewriteConn(c *psdp.ConnectionInformation) bool {
	if c == nil || c.Address == nil {
		return false
	}
	text, suffix := connIP(c.Address.Address)
	typ, addr, ok := s.fr.Addr(c.AddressType, text)
	if !ok {
		return false
	}
	c.AddressType, c.Address.Address = typ, addr+suffix
	s.edits++
	return true
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
	if active && len(s.opts.Ports) > 0 {
		if q, ok := s.fr.Port(port); ok {
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
			if v, ok := s.fr.RTCP(a.Value, active); ok {
				a.Value = v
				s.edits++
			}
		}
	}
	if !active || hasRTCP || rtcpMux || len(s.opts.Ports) == 0 || port == 65535 {
		return
	}
	rtp, _ := s.fr.Port(port)
	if rtcp, ok := s.opts.PublicPort(port + 1); ok && int(rtcp) != int(rtp)+1 {
		md.Attributes = append(md.Attributes, psdp.Attribute{Key: "rtcp", Value: strconv.Itoa(int(rtcp))})
		s.edits++
	}
}
