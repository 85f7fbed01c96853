package discovery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"time"

	"github.com/huin/goupnp/ssdp"
)

// SSDP (UPnP Device Architecture 1.1, 1.3): an M-SEARCH over HTTPU to the
// multicast group and to the gateway itself; only answers whose source is
// the gateway are kept.
const (
	ssdpMaxPacket  = 2048
	ssdpGrace      = 50 * time.Millisecond // keep collecting after the first answer
	ssdpMaxReplies = 32
)

var ssdpMulticast = netip.MustParseAddrPort("239.255.255.250:1900")

// searchTargets are sent in turn: some IGDs answer only their exact type
// (an IGD:2 device answers a search for IGD:1 too).
var searchTargets = []string{
	ssdp.UPNPRootDevice,
	"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
}

// ssdpClient is goupnp's HTTPU client interface over a caller-provided
// socket, with bounded reads and a source-address filter.
type ssdpClient struct {
	m    *Mapper
	conn net.PacketConn
	gw   netip.Addr
	dsts []netip.AddrPort
	wait time.Duration // longest wait for the first answer
}

var _ ssdp.HTTPUClientCtx = (*ssdpClient)(nil)

// DoWithContext sends the search and returns the gateway's answers, ending
// ssdpGrace after the first one or when ctx ends.
func (c *ssdpClient) DoWithContext(req *http.Request, numSends int) ([]*http.Response, error) {
	ctx := req.Context()
	var out []*http.Response
	for i := 0; i < numSends; i++ {
		for _, st := range searchTargets {
			pkt := appendMSearch(nil, st, req.Header.Get("MX"))
			for _, dst := range c.dsts {
				if _, err := c.conn.WriteTo(pkt, net.UDPAddrFromAddrPort(dst)); err != nil {
					c.m.log.Debug("discovery: SSDP send failed", "dst", dst, "err", err)
				}
			}
		}
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	deadline := time.Now().Add(c.wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.conn.SetReadDeadline(deadline)
	buf := make([]byte, ssdpMaxPacket)
	first := false
	for len(out) < ssdpMaxReplies {
		n, src, err := c.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
				break
			}
			return out, err
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok || ua.AddrPort().Addr().Unmap() != c.gw {
			c.m.log.Debug("discovery: ignoring SSDP answer from a host that is not the gateway", "src", src, "err", ErrNotGateway)
			continue
		}
		resp, err := parseSSDPResponse(buf[:n], req)
		if err != nil {
			c.m.log.Debug("discovery: bad SSDP answer", "src", src, "err", err)
			continue
		}
		out = append(out, resp)
		if !first {
			first = true
			c.conn.SetReadDeadline(time.Now().Add(ssdpGrace))
		}
	}
	return out, nil
}

// appendMSearch appends an SSDP M-SEARCH request.
func appendMSearch(b []byte, st, mx string) []byte {
	if mx == "" {
		mx = "1"
	}
	b = append(b, "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: "...)
	b = append(b, mx...)
	b = append(b, "\r\nST: "...)
	b = append(b, st...)
	return append(b, "\r\n\r\n"...)
}

// parseSSDPResponse decodes one SSDP answer (an HTTP response in a UDP
// datagram). It keeps only successful answers with a usable http LOCATION.
func parseSSDPResponse(b []byte, req *http.Request) (*http.Response, error) {
	if len(b) > ssdpMaxPacket {
		return nil, fmt.Errorf("SSDP answer of %d bytes: %w", len(b), ErrTooLarge)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(bytes.NewReader(b), ssdpMaxPacket), req)
	if err != nil {
		return nil, fmt.Errorf("SSDP answer: %v: %w", err, ErrMalformed)
	}
	resp.Body.Close()
	resp.Body = http.NoBody
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("SSDP answer status %d: %w", resp.StatusCode, ErrMalformed)
	}
	if _, err := ssdpLocation(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// ssdpLocation returns the LOCATION of an answer as an absolute http URL.
func ssdpLocation(resp *http.Response) (*url.URL, error) {
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, fmt.Errorf("SSDP LOCATION: %v: %w", err, ErrMalformed)
	}
	if loc.Scheme != "http" || loc.Host == "" {
		return nil, fmt.Errorf("SSDP LOCATION %q is not an http URL: %w", loc.Redacted(), ErrMalformed)
	}
	return loc, nil
}

// ssdpSearch finds the locations of the gateway's root devices.
func (m *Mapper) ssdpSearch(ctx context.Context, gw netip.Addr) ([]*url.URL, error) {
	lp := m.cfg.ListenPacket
	if lp == nil {
		var lc net.ListenConfig
		lp = lc.ListenPacket
	}
	network, laddr := "udp4", "0.0.0.0:0"
	if gw.Is6() && !gw.Is4In6() {
		network, laddr = "udp6", "[::]:0"
	}
	conn, err := lp(ctx, network, laddr)
	if err != nil {
		return nil, fmt.Errorf("SSDP socket: %w", err)
	}
	defer conn.Close()
	dsts := m.cfg.SSDPAddrs
	switch {
	case len(dsts) > 0:
	case network == "udp6":
		// An IPv6 gateway is asked directly: its multicast group (ff02::c)
		// needs the interface the UA does not name.
		dsts = []netip.AddrPort{netip.AddrPortFrom(gw, 1900)}
	default:
		dsts = []netip.AddrPort{ssdpMulticast, netip.AddrPortFrom(gw, 1900)}
	}
	c := &ssdpClient{m: m, conn: conn, gw: gw, dsts: dsts, wait: m.cfg.upnpTimeout()}
	// goupnp derives MX from the deadline and insists on at least 1 s; the
	// client ends the wait itself after the gateway has answered.
	sctx, cancel := context.WithTimeout(ctx, m.cfg.upnpTimeout()+time.Second)
	defer cancel()
	resps, err := ssdp.RawSearch(sctx, c, ssdp.UPNPRootDevice, 1)
	if err != nil {
		return nil, fmt.Errorf("SSDP search: %w", err)
	}
	var locs []*url.URL
	seen := map[string]bool{}
	for _, r := range resps {
		loc, err := ssdpLocation(r)
		if err != nil {
			continue
		}
		if err := checkGatewayURL(loc, gw); err != nil {
			m.log.Warn("discovery: ignoring SSDP LOCATION off the gateway", "location", loc.Redacted(), "err", err)
			continue
		}
		if !seen[loc.String()] {
			seen[loc.String()] = true
			locs = append(locs, loc)
		}
	}
	if len(locs) == 0 {
		return nil, fmt.Errorf("SSDP: %w", ErrNoResponse)
	}
	return locs, nil
}

// checkGatewayURL fails unless u points at the gateway's own address.
func checkGatewayURL(u *url.URL, gw netip.Addr) error {
	a, err := netip.ParseAddr(u.Hostname())
	if err != nil || a.Unmap() != gw {
		return fmt.Errorf("%s: %w", u.Redacted(), ErrNotGateway)
	}
	return nil
}
