package discovery

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
)

// IPv6 pinholes. Behind an IPv6 router there is no address translation,
// only a stateful firewall (RFC 6092) that drops inbound packets no flow of
// the UA opened. When the Mapper's local address is IPv6 (MapperConfig.LocalAddr,
// with MapperConfig.Gateway the router's IPv6 address), a "mapping" is a pinhole
// in that firewall: PCP MAP (RFC 6887 section 11 covers firewall control:
// the answer names the UA's own address and port) or UPnP IGD:2
// WANIPv6FirewallControl AddPinhole, renewed with UpdatePinhole and removed
// with DeletePinhole. Mapping.External is then the internal address and
// port. NAT-PMP has no IPv6.

const (
	svcWANIPv6FC = "urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"
	// pinholeMaxLease is the longest pinhole lease IGD:2 allows (86400 s).
	pinholeMaxLease = 86400
	// UPnPErrNoSuchEntry is WANIPv6FirewallControl's 704 NoSuchEntry: the
	// pinhole to update or delete is gone (expired, or the router restarted).
	UPnPErrNoSuchEntry = 704
)

// isPinhole reports whether mappings for local are firewall pinholes.
func isPinhole(local netip.Addr) bool { return local.Is6() && !local.Is4In6() }

// firewallControl returns the gateway's WANIPv6FirewallControl service
// from root, bound to the Mapper's HTTP client, if its control URL is on
// the gateway.
func (m *Mapper) firewallControl(root *goupnp.RootDevice, loc *url.URL, gw netip.Addr) *internetgateway2.WANIPv6FirewallControl1 {
	cs, err := internetgateway2.NewWANIPv6FirewallControl1ClientsFromRootDevice(root, loc)
	if err != nil {
		return nil
	}
	for _, c := range cs {
		if checkGatewayURL(&c.SOAPClient.EndpointURL, gw) != nil {
			continue
		}
		c.SOAPClient.HTTPClient = *m.hc
		return c
	}
	return nil
}

// upnpPinhole opens (id 0) or renews (UpdatePinhole of id) the pinhole for
// UDP or TCP to local:port and returns its ID and the lease granted in
// seconds. A renewal of a pinhole the gateway no longer has opens a new one.
func (m *Mapper) upnpPinhole(ctx context.Context, g *igd, tcp bool, local netip.Addr, port, id uint16, lease uint32) (uint16, uint32, error) {
	if g.fc == nil {
		return 0, 0, fmt.Errorf("UPnP: the IGD has no %s: %w", svcWANIPv6FC, ErrNoPortMapper)
	}
	if lease == 0 || lease > pinholeMaxLease {
		lease = pinholeMaxLease
	}
	if id != 0 {
		err := upnpError(g.fc.UpdatePinholeCtx(ctx, id, lease))
		if err == nil {
			return id, lease, nil
		}
		if upnpCode(err) != UPnPErrNoSuchEntry {
			return 0, 0, fmt.Errorf("UPnP UpdatePinhole %d: %w", id, err)
		}
		m.log.Info("discovery: pinhole gone, opening it again", "id", id)
	}
	proto := uint16(pcpProtoUDP)
	if tcp {
		proto = pcpProtoTCP
	}
	nid, err := g.fc.AddPinholeCtx(ctx, "", 0, local.String(), port, proto, lease)
	if err != nil {
		return 0, 0, fmt.Errorf("UPnP AddPinhole [%s]:%d: %w", local, port, upnpError(err))
	}
	return nid, lease, nil
}

// upnpDeletePinhole removes pinhole id.
func (m *Mapper) upnpDeletePinhole(ctx context.Context, g *igd, id uint16) error {
	if g.fc == nil {
		return fmt.Errorf("UPnP: the IGD has no %s: %w", svcWANIPv6FC, ErrNoPortMapper)
	}
	return upnpError(g.fc.DeletePinholeCtx(ctx, id))
}
