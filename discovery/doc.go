// Package discovery asks the home gateway for a public port: the default
// gateway, UPnP IGD v1/v2, NAT-PMP (RFC 6886) and PCP (RFC 6887) mappings with
// lease renewal, IPv6 firewall pinholes, the network's NAT64 prefix, and
// Reconcile, the rule over every public-address source a UA has.
//
// A SIP user agent behind a home router can often ask the router itself to
// forward a public port to its SIP and RTP sockets instead of guessing with
// STUN and keeping NAT bindings open. Routers speak one or more of three
// protocols; a Mapper probes all of them at once, remembers what the
// gateway speaks, and keeps the mappings it made alive.
//
// # Protocols
//
//   - PCP, RFC 6887: ANNOUNCE (probe and unsolicited restart notices, 14.1)
//     and MAP (11) with a random 96-bit nonce per mapping that every answer
//     must echo, the server epoch check of 8.5, the lifetime the server
//     grants, no THIRD_PARTY option (the gateway maps for the request's own
//     source address). A NAT-PMP-only gateway's UNSUPP_VERSION answer is
//     recognised (9).
//   - NAT-PMP, RFC 6886: external address (3.2), UDP/TCP mapping and
//     deletion (3.3, 3.4), the epoch check of 3.6, address announcements
//     (3.2.1). Requests are retransmitted from 250 ms, doubling (3.1).
//   - UPnP Internet Gateway Device v1 and v2 (UPnP Forum, IGD:1 and IGD:2,
//     WANIPConnection:1/2, WANPPPConnection:1) through github.com/huin/goupnp:
//     SSDP M-SEARCH to the multicast group and the gateway, the device
//     description, GetExternalIPAddress, AddAnyPortMapping (v2) or
//     AddPortMapping (v1), DeletePortMapping. Error 725
//     OnlyPermanentLeasesSupported falls back to a permanent lease (which is
//     still re-checked), 718 ConflictInMappingEntry picks another external
//     port, 724 SamePortValuesRequired retries with the internal port.
//
// # IPv6 firewall pinholes
//
// With MapperConfig.Gateway the router's IPv6 address and MapperConfig.LocalAddr the
// UA's IPv6 address, a mapping is a pinhole in the router's stateful IPv6
// firewall (RFC 6092): PCP MAP over IPv6 (RFC 6887 firewall control) or
// UPnP IGD:2 WANIPv6FirewallControl AddPinhole, UpdatePinhole on renewal
// (a pinhole the router lost is opened again) and DeletePinhole on Unmap.
// Mapping.External is the UA's own address and port: nothing is
// translated. SSDP asks the IPv6 gateway directly. Tested against
// miniupnpd 2.3.1 (Debian 12, built with IPv6 and IGD:2 pinholes, given
// ipv6_listening_ip); it refuses to delete a pinhole that a PCP renewal
// updated (NOT_AUTHORIZED), which then lapses with its lease.
//
// # NAT64 prefixes
//
// DetectNAT64 is the one rule for finding the prefix of the network's NAT64
// (RFC 6052): it asks the DNS64 for ipv4only.arpa (RFC 7050) and the
// gateway's PCP server for the PREFIX64 option (RFC 7225; Mapper.Prefix64
// sends it in an ANNOUNCE, which creates nothing) at once, and the first
// that names a prefix wins. A PCP server without RFC 7225 ignores the
// option; miniupnpd 2.3.1 copies the request's empty option back, which
// counts as no answer (ErrNoPrefix64).
//
// Map uses the cached knowledge of what the gateway speaks, or probes: PCP
// and NAT-PMP at once, UPnP after a 100 ms head start (or as soon as both
// failed), and maps over the most preferred protocol that answered without
// waiting for the others. Probe asks all three at once and waits for every
// answer.
//
// The gateway is the host's default gateway (github.com/jackpal/gateway) or
// MapperConfig.Gateway. Only that address is trusted: SSDP answers from any other
// source, device descriptions and control URLs pointing elsewhere are
// ignored. Every HTTP exchange goes through the Mapper's own client (never
// http.DefaultClient, never a proxy): bounded in time (MapperConfig.UPnPTimeout),
// in header and body size (128 KiB) and in XML nesting depth, so a hostile
// or broken router cannot hang or exhaust the UA. Malformed NAT-PMP and PCP
// answers are skipped, never trusted; no decoder panics (they are fuzzed).
//
// # Leases, renewals, restarts
//
// A mapping is renewed at half its lease on the MapperConfig.Clock (RFC 6886
// 3.3, RFC 6887 11.2.1). A failed renewal is retried before the lease runs
// out; when it has run out an EventLost is reported, and once the gateway
// answers again the mapping is re-created (EventMapped), over another
// protocol if the old one is gone. When a PCP or NAT-PMP answer shows the
// server's epoch went back (the router rebooted and forgot its mappings),
// EventGatewayRestarted is reported and every mapping of that protocol is
// renewed at once. A changed external address or port gives
// EventAddressChanged. With MapperConfig.AnnounceAddr set, the unsolicited PCP
// ANNOUNCE and NAT-PMP address announcements a gateway multicasts to
// 224.0.0.1:5350 trigger the same checks without waiting for a renewal.
// Close deletes every mapping.
//
// # Public address
//
// Reconcile decides which address and port a UA puts in Contact and SDP
// from what it observed (package agent gathers the observations and calls
// it): a configured static address; a gateway mapping whose external
// address is public; or, when the gateway
// reports an RFC 6598 shared (100.64.0.0/10) or private WAN address while a
// STUN server sees a public one, the STUN address, with CGNAT or DoubleNAT
// set, because a mapping on the home router alone cannot make the UA
// reachable through the carrier's NAT. Choice.Reason says why in plain
// words. Address classes come from package ipaddr.
//
// # Usage
//
//	m := discovery.NewMapper(discovery.MapperConfig{
//		Logger:  logger,
//		OnEvent: func(e discovery.Event) { log.Print(e) },
//	})
//	defer m.Close() // deletes the mappings
//	mp, err := m.Map(ctx, "udp", 5060)
//	if err != nil {
//		// no port-mapping gateway: fall back to STUN and keep-alives
//	}
//	fmt.Println("public SIP address:", mp.External)
//
//	mapped, _ := stunClient.Binding(ctx, server) // a *nat.Client on the SIP socket
//	choice := discovery.Reconcile(discovery.Observations{Local: sipAddr, Mapping: &mp, STUN: mapped})
//	fmt.Println(choice.Contact, choice.Reason)
//
// Tests and labs can run the Mapper inside another network namespace by
// giving MapperConfig.DialContext and MapperConfig.ListenPacket functions that create
// their sockets there, and MapperConfig.Gateway.
//
// # Concurrency
//
// A Mapper is safe for concurrent use. Operations on the gateway (Map,
// Unmap, renewals, Close) are serialised; Probe may run beside them.
// Renewals run on timers from MapperConfig.Clock; MapperConfig.OnEvent is called from
// those timers' goroutines (with a fake clock, from its Advance) after the
// Mapper's locks are released, so it may call the Mapper from a new
// goroutine but should not block. Network timeouts (retransmissions, HTTP)
// use real time; lease schedules use the Clock.
package discovery
