// Package discovery asks the home gateway for a public port: the default
// gateway, UPnP IGD v1/v2, NAT-PMP (RFC 6886) and PCP (RFC 6887) mappings with
// lease renewal, and a chooser over every public-address source a UA has.
package discovery
