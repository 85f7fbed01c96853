package discovery

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/soap"
)

// Service types of the WAN connection services, in the order tried.
const (
	svcWANIP2         = "urn:schemas-upnp-org:service:WANIPConnection:2"
	svcWANIP1         = "urn:schemas-upnp-org:service:WANIPConnection:1"
	svcWANPPP1        = "urn:schemas-upnp-org:service:WANPPPConnection:1"
	upnpMaxLease      = 604800 // IGD v2 caps leases at one week
	upnpConflictTries = 8
)

// igdConn is what WANIPConnection1/2 and WANPPPConnection1 have in common.
type igdConn interface {
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	AddPortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string, intPort uint16, intClient string, enabled bool, desc string, lease uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string) error
}

// igd is the WAN connection service of the gateway's IGD.
type igd struct {
	service  string
	location string
	conn     igdConn
	v2       *internetgateway2.WANIPConnection2 // set when AddAnyPortMapping exists
	// fc is the IGD:2 WANIPv6FirewallControl service (pinhole.go), when
	// the device has one on the gateway.
	fc *internetgateway2.WANIPv6FirewallControl1
}

// parseDescription decodes a device description, bounded in size and depth.
func parseDescription(b []byte) (*goupnp.RootDevice, error) {
	if len(b) > maxXMLBody {
		return nil, fmt.Errorf("device description of %d bytes: %w", len(b), ErrTooLarge)
	}
	if err := checkXML(b); err != nil {
		return nil, fmt.Errorf("device description: %w", err)
	}
	root := new(goupnp.RootDevice)
	d := xml.NewDecoder(bytes.NewReader(b))
	d.DefaultSpace = "urn:schemas-upnp-org:device-1-0"
	d.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		return input, nil // gateways say iso-8859-1 or utf-8; the fields we use are ASCII
	}
	if err := d.Decode(root); err != nil {
		return nil, fmt.Errorf("device description: %v: %w", err, ErrMalformed)
	}
	return root, nil
}

// fetchIGD downloads the description at loc and returns the first WAN
// connection service that answers GetExternalIPAddress, with that address.
func (m *Mapper) fetchIGD(ctx context.Context, loc *url.URL, gw netip.Addr) (*igd, netip.Addr, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("get device description: %w", err)
	}
	body, err := readBounded(resp.Body, maxXMLBody)
	resp.Body.Close()
	if err != nil {
		return nil, netip.Addr{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, netip.Addr{}, fmt.Errorf("device description: HTTP %s: %w", resp.Status, ErrMalformed)
	}
	root, err := parseDescription(body)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	base := loc
	if root.URLBaseStr != "" {
		if u, err := url.Parse(root.URLBaseStr); err == nil && checkGatewayURL(u, gw) == nil {
			base = u
		}
	}
	root.SetURLBase(base)
	var errs []error
	for _, g := range m.igdCandidates(root, loc) {
		if u, ok := g.endpoint(); !ok || checkGatewayURL(u, gw) != nil {
			errs = append(errs, fmt.Errorf("%s control URL off the gateway: %w", g.service, ErrNotGateway))
			continue
		}
		s, err := g.conn.GetExternalIPAddressCtx(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s GetExternalIPAddress: %w", g.service, upnpError(err)))
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s external address %q: %w", g.service, s, ErrMalformed))
			continue
		}
		g.fc = m.firewallControl(root, loc, gw)
		return g, a.Unmap(), nil
	}
	if len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no WAN connection service in %s: %w", loc.Redacted(), ErrNoPortMapper))
	}
	return nil, netip.Addr{}, errors.Join(errs...)
}

// igdCandidates returns the WAN connection services of root, IP v2 first,
// each with its SOAP client bound to the Mapper's HTTP client.
func (m *Mapper) igdCandidates(root *goupnp.RootDevice, loc *url.URL) []*igd {
	var out []*igd
	bind := func(sc *goupnp.ServiceClient) { sc.SOAPClient.HTTPClient = *m.hc }
	if cs, err := internetgateway2.NewWANIPConnection2ClientsFromRootDevice(root, loc); err == nil {
		for _, c := range cs {
			bind(&c.ServiceClient)
			out = append(out, &igd{service: svcWANIP2, location: loc.String(), conn: c, v2: c})
		}
	}
	if cs, err := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, loc); err == nil {
		for _, c := range cs {
			bind(&c.ServiceClient)
			out = append(out, &igd{service: svcWANIP1, location: loc.String(), conn: c})
		}
	}
	if cs, err := internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(root, loc); err == nil {
		for _, c := range cs {
			bind(&c.ServiceClient)
			out = append(out, &igd{service: svcWANPPP1, location: loc.String(), conn: c})
		}
	}
	return out
}

func (g *igd) endpoint() (*url.URL, bool) {
	switch c := g.conn.(type) {
	case *internetgateway2.WANIPConnection2:
		return &c.SOAPClient.EndpointURL, true
	case *internetgateway2.WANIPConnection1:
		return &c.SOAPClient.EndpointURL, true
	case *internetgateway2.WANPPPConnection1:
		return &c.SOAPClient.EndpointURL, true
	}
	return nil, false
}

// upnpError turns a SOAP fault into a *ResultError carrying the UPnP code.
func upnpError(err error) error {
	var f *soap.SOAPFaultError
	if errors.As(err, &f) {
		return &ResultError{Protocol: ProtoUPnP, Code: f.Detail.UPnPError.Errorcode, Text: f.Detail.UPnPError.ErrorDescription}
	}
	return err
}

func upnpCode(err error) int {
	var re *ResultError
	if errors.As(err, &re) && re.Protocol == ProtoUPnP {
		return re.Code
	}
	return 0
}

// upnpAdd maps internal to an external port, asking first for want. It
// handles 725 OnlyPermanentLeasesSupported (retry with lease 0), 718
// ConflictInMappingEntry (another port) and 724 SamePortValuesRequired.
// It returns the external port and the lease granted in seconds (0 =
// permanent).
func (m *Mapper) upnpAdd(ctx context.Context, g *igd, tcp bool, local netip.Addr, internal, want uint16, lease uint32, desc string) (uint16, uint32, error) {
	proto := "UDP"
	if tcp {
		proto = "TCP"
	}
	if lease > upnpMaxLease {
		lease = upnpMaxLease
	}
	client := local.String()
	if g.v2 != nil {
		for try := 0; try < 2; try++ {
			port, err := g.v2.AddAnyPortMappingCtx(ctx, "", want, proto, internal, client, true, desc, lease)
			err = upnpError(err)
			if err == nil && port != 0 {
				return port, lease, nil
			}
			if upnpCode(err) == UPnPErrOnlyPermanentLease && lease != 0 {
				m.log.Info("discovery: IGD accepts only permanent leases", "service", g.service)
				lease = 0
				continue
			}
			m.log.Debug("discovery: AddAnyPortMapping failed, trying AddPortMapping", "err", err)
			break
		}
	}
	ext := want
	var last error
	for try := 0; try < upnpConflictTries; try++ {
		err := upnpError(g.conn.AddPortMappingCtx(ctx, "", ext, proto, internal, client, true, desc, lease))
		if err == nil {
			return ext, lease, nil
		}
		last = err
		switch upnpCode(err) {
		case UPnPErrOnlyPermanentLease:
			if lease == 0 {
				return 0, 0, err
			}
			m.log.Info("discovery: IGD accepts only permanent leases", "service", g.service)
			lease = 0
			try--
		case UPnPErrConflict:
			m.log.Info("discovery: external port taken, trying another", "port", ext)
			ext = uint16(1024 + rand.IntN(65535-1024))
		case UPnPErrSamePortRequired:
			if ext == internal {
				return 0, 0, err
			}
			ext = internal
		default:
			return 0, 0, err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return 0, 0, fmt.Errorf("UPnP AddPortMapping after %d tries: %w", upnpConflictTries, last)
}

// upnpDelete removes the mapping of external port ext.
func (m *Mapper) upnpDelete(ctx context.Context, g *igd, tcp bool, ext uint16) error {
	proto := "UDP"
	if tcp {
		proto = "TCP"
	}
	return upnpError(g.conn.DeletePortMappingCtx(ctx, "", ext, proto))
}
