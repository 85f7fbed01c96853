package sdp

import (
	"net/netip"

	"github.com/sipnat/sipnat/ipaddr"
)

// This file is the field-level door: the NAT tests and the rewrite rules of
// Check and AppendRewrite applied to one field value at a time, for callers
// that hold the SDP parsed by another library (package sdp/sdppion does so
// for github.com/pion/sdp/v3). It reads addresses and a=rtcp values with the
// byte path's own code, so every door agrees on what is an address and what
// is rewritten.

// Add records a finding in r (and its test in r.Tests). A door that checks a
// structured description reports its findings through it, with Line 0.
// Media and Line are kept as 32-bit numbers, and Addr without its zone.
func (r *Result) Add(f Finding) { r.add(f.Test, f.Media, f.Line, f.Addr) }

// add is Add with the finding's fields: the byte path stores them in
// place, not through a Finding built and copied.
func (r *Result) add(t Tests, media, line int, addr netip.Addr) {
	r.Tests |= t
	if r.n == len(r.findings) {
		r.Truncated = true
		return
	}
	f := &r.findings[r.n]
	r.n++
	f.test, f.media, f.line = t, int32(media), int32(line)
	switch {
	case addr.Is4():
		// Four bytes: As16 would be written as two 8-byte halves and
		// read back as one 16-byte block, which waits for both.
		f.fam, *(*[4]byte)(f.addr[:4]) = 4, addr.As4()
	case addr.Is6():
		f.fam, f.addr = 6, addr.As16()
	}
}

// PrivateAddr parses the address text of an o= or c= field and reports it
// with whether it is private (the test of PrivateOrigin, PrivateSessionConn
// and PrivateMediaConn). An FQDN or malformed text is not private.
func PrivateAddr(text string) (netip.Addr, bool) {
	a := classify([]byte(text))
	return a.ip, a.priv
}

// PrivateRTCPAddr reads an a=rtcp attribute value (RFC 3605, "port [IN IP4
// addr]") and reports its address with whether it is private (the test of
// PrivateRTCP).
func PrivateRTCPAddr(value string) (netip.Addr, bool) {
	v := []byte(value)
	rv, ok := parseRTCPValue(v, nil)
	if !ok || !rv.hasAddr {
		return netip.Addr{}, false
	}
	a := classify(v[rv.addr.s:rv.addr.e])
	return a.ip, a.priv
}

// FieldRewriter applies Options to single field values: what AppendRewrite
// does to a line, for a caller that walks a parsed description itself. The
// caller keeps the structure's rules: which streams are active (their
// connection address was rewritten), the marker, the added a=rtcp line.
type FieldRewriter struct {
	opts *Options
	pub  netip.Addr
}

// NewFieldRewriter validates opts like AppendRewrite does (ErrBadOptions)
// and returns a rewriter for its fields. opts must not change while the
// rewriter is used.
func NewFieldRewriter(opts *Options) (*FieldRewriter, error) {
	pub, err := opts.check()
	if err != nil {
		return nil, err
	}
	return &FieldRewriter{opts: opts, pub: pub}, nil
}

// Public returns the address written in place of the addresses rewritten
// (invalid with Options.NAT64, where each address gets its own).
func (f *FieldRewriter) Public() netip.Addr { return f.pub }

// Addr rewrites the address of an o= or c= field given its address type
// ("IP4", "IP6") and address text: it returns the new type and text and
// true when the address is to be replaced (private, or any unicast address
// other than Public with Options.All), and the inputs unchanged and false
// otherwise.
func (f *FieldRewriter) Addr(typ, addr string) (string, string, bool) {
	ip, ok := ipaddr.Parse([]byte(addr))
	if ok && f.opts.NAT64.IsValid() {
		if !ip.Unmap().Is4() || ip.IsUnspecified() || ip.IsMulticast() {
			return typ, addr, false
		}
		syn, err := ipaddr.SynthesizeNAT64(f.opts.NAT64, ip)
		if err != nil {
			return typ, addr, false
		}
		return "IP6", syn.String(), true
	}
	if !ok || !want(ip, f.pub, f.opts.All) {
		return typ, addr, false
	}
	if !familyMatches([]byte(typ), f.pub) {
		typ = addrType(f.pub)
	}
	return typ, f.pub.String(), true
}

// Port returns the public port Options.Ports gives local port p, and
// whether the map changes it. Ports are mapped only in streams whose
// connection address was rewritten.
func (f *FieldRewriter) Port(p uint16) (uint16, bool) {
	if q, ok := f.opts.PublicPort(p); ok && q != p {
		return q, true
	}
	return p, false
}

// RTCP rewrites an a=rtcp attribute value (RFC 3605): its address like
// Addr, and its port through Options.Ports when active (the stream's
// connection address was rewritten). It returns the new value and whether
// it changed; a value it cannot read is returned unchanged.
func (f *FieldRewriter) RTCP(value string, active bool) (string, bool) {
	v := []byte(value)
	rv, ok := parseRTCPValue(v, nil)
	if !ok {
		return value, false
	}
	w := rewriter{body: v, pub: f.pub, ports: f.opts.Ports, all: f.opts.All, nat64: f.opts.NAT64}
	changed := false
	if active && len(f.opts.Ports) > 0 {
		if q, ok := w.mapPort(rv.portNum); ok {
			w.writePort(rv.port, q)
			changed = true
		}
	}
	if rv.hasAddr && w.addr(v[rv.addr.s:rv.addr.e]).want {
		w.rewriteAddr(0, rv.typ, rv.addr)
		changed = true
	}
	if !changed {
		return value, false
	}
	w.flush(len(v))
	return string(w.dst), true
}
