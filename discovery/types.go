package discovery

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol is a port-mapping protocol a gateway may speak.
type Protocol uint8

// The port-mapping protocols, in the order the Mapper prefers them.
const (
	ProtoNone   Protocol = iota // no protocol
	ProtoPCP                    // Port Control Protocol, RFC 6887
	ProtoNATPMP                 // NAT Port Mapping Protocol, RFC 6886
	ProtoUPnP                   // UPnP Internet Gateway Device v1/v2
)

var protoNames = [...]string{ProtoNone: "none", ProtoPCP: "pcp", ProtoNATPMP: "nat-pmp", ProtoUPnP: "upnp"}

// String returns "pcp", "nat-pmp", "upnp" or "none".
func (p Protocol) String() string {
	if int(p) < len(protoNames) {
		return protoNames[p]
	}
	return fmt.Sprintf("protocol(%d)", p)
}

// MarshalText returns the name String gives.
func (p Protocol) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// ParseProtocol parses the names String returns ("natpmp" and "pmp" are
// accepted for NAT-PMP).
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "pcp":
		return ProtoPCP, nil
	case "nat-pmp", "natpmp", "pmp":
		return ProtoNATPMP, nil
	case "upnp", "igd":
		return ProtoUPnP, nil
	}
	return ProtoNone, fmt.Errorf("protocol %q: %w", s, ErrUnsupported)
}

// Mapping is a port the gateway forwards to the UA.
type Mapping struct {
	Protocol Protocol       `json:"protocol"` // how it was made
	Network  string         `json:"network"`  // "udp" or "tcp"
	Gateway  netip.Addr     `json:"gateway"`  // the gateway that holds it
	Internal netip.AddrPort `json:"internal"` // the UA's own address and port
	External netip.AddrPort `json:"external"` // the address and port the gateway forwards to Internal
	Lifetime time.Duration  `json:"lifetime"` // lease granted; 0 means permanent (UPnP)
	Obtained time.Time      `json:"obtained"` // when the lease was granted or last renewed
	Expires  time.Time      `json:"expires"`  // end of the lease; zero when permanent
	RenewAt  time.Time      `json:"renew_at"` // when the Mapper renews it next
	Service  string         `json:"service"`  // UPnP service type, or "" for PCP/NAT-PMP
	Epoch    uint32         `json:"epoch"`    // PCP/NAT-PMP server epoch at the last answer
	Renewals int            `json:"renewals"` // successful renewals so far
	Restarts int            `json:"restarts"` // gateway restarts (epoch resets) seen so far
	Replaced bool           `json:"replaced"` // the external port is not the one first asked for
	Nonce    [12]byte       `json:"-"`        // PCP mapping nonce
	nonce    [12]byte       // PCP mapping nonce
	wantPort uint16         // external port asked for
	pinhole  uint16         // UPnP WANIPv6FirewallControl UniqueID of a pinhole
	desc     string         // UPnP description
	lostSent bool           // a Lost event was sent since the last success
}

// String returns "udp 192.168.1.10:5060 -> 203.0.113.1:5060 via pcp (lease 2h0m0s)".
func (m Mapping) String() string {
	lease := "permanent"
	if m.Lifetime > 0 {
		lease = m.Lifetime.String()
	}
	return fmt.Sprintf("%s %s -> %s via %s (lease %s)", m.Network, m.Internal, m.External, m.Protocol, lease)
}

// EventKind says what happened to a mapping.
type EventKind uint8

// The events a Mapper reports.
const (
	EventMapped           EventKind = iota + 1 // a new mapping was made
	EventRenewed                               // the lease was renewed
	EventLost                                  // renewal failed and the lease ran out (or the gateway refused)
	EventAddressChanged                        // the external address or port of a mapping changed
	EventGatewayRestarted                      // the gateway's epoch went back: it rebooted and forgot its mappings; they are being re-created
	EventDeleted                               // the mapping was removed (Unmap or Close)
)

var eventNames = [...]string{"", "mapped", "renewed", "lost", "address-changed", "gateway-restarted", "deleted"}

// String returns the event name, e.g. "renewed".
func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", k)
}

// MarshalText returns the name String gives.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is what MapperConfig.OnEvent receives.
type Event struct {
	Kind     EventKind      `json:"kind"`              // what happened
	Mapping  Mapping        `json:"mapping"`           // the mapping after the event
	Previous netip.AddrPort `json:"previous,omitzero"` // the former external address (EventAddressChanged)
	Err      error          `json:"-"`                 // why (EventLost)
	Reason   string         `json:"reason,omitempty"`  // plain-words explanation
}

// String returns a one-line description of the event.
func (e Event) String() string {
	s := e.Kind.String() + ": " + e.Mapping.String()
	if e.Previous.IsValid() {
		s += " (was " + e.Previous.String() + ")"
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Errors returned by this package, checkable with errors.Is.
var (
	ErrNoGateway     = errors.New("discovery: no default gateway")
	ErrNoPortMapper  = errors.New("discovery: the gateway speaks no port-mapping protocol")
	ErrNoResponse    = errors.New("discovery: no response from the gateway")
	ErrMalformed     = errors.New("discovery: malformed response")
	ErrNotGateway    = errors.New("discovery: device is not the gateway")
	ErrTooLarge      = errors.New("discovery: response too large")
	ErrTooDeep       = errors.New("discovery: XML nested too deeply")
	ErrClosed        = errors.New("discovery: mapper closed")
	ErrNonceMismatch = errors.New("discovery: PCP nonce mismatch")
	// ErrUnsupported: a network other than "udp" or "tcp", or an unknown
	// protocol name.
	ErrUnsupported = errors.New("discovery: unsupported")
)

// ResultError is a refusal by the gateway: a NAT-PMP or PCP result code or a
// UPnP error code.
type ResultError struct {
	Protocol Protocol // the protocol whose gateway refused
	Code     int      // NAT-PMP/PCP result code, UPnP errorCode
	Text     string   // what the code means, or the UPnP errorDescription
}

// Error says which protocol's gateway refused and its code.
func (e *ResultError) Error() string {
	return fmt.Sprintf("discovery: %s gateway refused: %d %s", e.Protocol, e.Code, e.Text)
}

// UPnP error codes this package acts on (UPnP IGD WANIPConnection).
const (
	UPnPErrConflict           = 718 // ConflictInMappingEntry: the external port is taken
	UPnPErrSamePortRequired   = 724 // SamePortValuesRequired
	UPnPErrOnlyPermanentLease = 725 // OnlyPermanentLeasesSupported
)
