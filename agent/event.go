package agent

import (
	"fmt"
	"net/netip"
)

// EventKind says what the SIP stack must act on.
type EventKind uint8

// The events.
const (
	// PublicAddressChanged: the Contact changed (Event.Address); register
	// again with it (and re-INVITE calls in progress).
	PublicAddressChanged EventKind = iota + 1
	// MediaAddressChanged: a media socket's public address changed
	// (Event.Media, Event.Address); the next SDP names it.
	MediaAddressChanged
	// FlowFailed: a keep-alive to the registrar went unanswered (its
	// retransmissions too), reported within one keep-alive interval of the
	// moment the flow died; the registration is probably lost. It comes
	// at once when the registrar answers a keep-alive with 430 Flow Failed
	// (RFC 5626 §5.3: it lost the flow): register again.
	FlowFailed
	// FlowRecovered: the flow answers again; register again.
	FlowRecovered
	// MappingLost: a gateway port mapping could not be renewed.
	MappingLost
	// RelayLost: a relay allocation is gone.
	RelayLost
	// KeepAliveShortened: the binding expired between keep-alives (the
	// public address moved); the interval is now Event.Interval. A NAT that
	// re-creates a forgotten binding on the same port (port preservation)
	// shows no move, so this cannot be noticed there.
	KeepAliveShortened
	// RelayRecovered: a lost relay allocation was made again (Event.Media,
	// Event.Address); a new address also comes as MediaAddressChanged.
	RelayRecovered
)

var eventNames = [...]string{"", "public-address-changed", "media-address-changed", "flow-failed", "flow-recovered", "mapping-lost", "relay-lost", "keepalive-shortened", "relay-recovered"}

// String returns the event's name, e.g. "public-address-changed".
func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// MarshalText returns the name String gives.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is what Config.OnEvent receives.
type Event struct {
	Kind     EventKind      `json:"kind"`                  // what happened
	Address  netip.AddrPort `json:"address,omitzero"`      // the new address
	Previous netip.AddrPort `json:"previous,omitzero"`     // the address before
	Media    int            `json:"media"`                 // the media socket (MediaAddressChanged, MappingLost of media)
	Interval int64          `json:"interval_ms,omitempty"` // the new keep-alive interval in ms (KeepAliveShortened)
	Reason   string         `json:"reason"`                // why, in words
}

// String describes the event in words.
func (e Event) String() string { return e.Kind.String() + ": " + e.Reason }
