package keepalive

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Kind is the kind of keep-alive a Keeper sends on one flow.
type Kind uint8

// The client keep-alive kinds.
const (
	// CRLF sends a double CRLF ("ping") on a TCP or TLS flow and expects a
	// single CRLF ("pong") back within KeeperConfig.Timeout (RFC 5626 §4.4.1).
	CRLF Kind = iota + 1
	// STUN sends a STUN Binding request on the SIP socket to the server of
	// the flow (RFC 5626 §4.4.2); a response is the answer, and a changed
	// mapped address is reported as MappingChanged.
	STUN
	// Options sends a SIP OPTIONS request; any response counts as the
	// answer, whatever its status.
	Options
	// UDP sends a datagram (CRLF, or KeeperConfig.Payload) and expects nothing.
	UDP
	// RTP sends an RTP packet with no payload and a payload type the
	// session does not use (RFC 6263 §4.6), or KeeperConfig.Payload, on a media
	// socket while the stream is on hold. It expects nothing.
	RTP
)

// String returns the kind's name: "crlf", "stun", "options", "udp", "rtp".
func (k Kind) String() string {
	switch k {
	case CRLF:
		return "crlf"
	case STUN:
		return "stun"
	case Options:
		return "options"
	case UDP:
		return "udp"
	case RTP:
		return "rtp"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// answered reports whether keep-alives of kind k get an answer.
func (k Kind) answered() bool { return k == CRLF || k == STUN || k == Options }

// EventKind says what a Keeper noticed.
type EventKind uint8

// The events a user agent reacts to.
const (
	// MappingChanged: STUN saw a new public address or port. The UA must
	// register again (and re-INVITE calls) with the new address.
	MappingChanged EventKind = iota + 1
	// FlowFailed: KeeperConfig.MaxMisses keep-alives in a row got no answer (or
	// could not be sent). RFC 5626 §4.4 says the flow is dead: register again.
	FlowFailed
	// Recovered: a failed flow answered again.
	Recovered
)

// String returns the event's name.
func (k EventKind) String() string {
	switch k {
	case MappingChanged:
		return "mapping-changed"
	case FlowFailed:
		return "flow-failed"
	case Recovered:
		return "recovered"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is what a Keeper reports through KeeperConfig.OnEvent.
type Event struct {
	Kind     EventKind      `json:"kind"`              // what happened
	At       time.Time      `json:"at"`                // when, on the Keeper's clock
	Mapping  netip.AddrPort `json:"mapping,omitzero"`  // the current mapped address (STUN kind)
	Previous netip.AddrPort `json:"previous,omitzero"` // the mapped address before a MappingChanged
	Misses   int            `json:"misses,omitempty"`  // keep-alives missed in a row
	Err      error          `json:"-"`                 // the last error, for FlowFailed
}

// String describes the event for a person.
func (e Event) String() string {
	switch e.Kind {
	case MappingChanged:
		return fmt.Sprintf("%s %v -> %v", e.Kind, e.Previous, e.Mapping)
	case FlowFailed:
		if e.Err != nil {
			return fmt.Sprintf("%s after %d misses: %v", e.Kind, e.Misses, e.Err)
		}
		return fmt.Sprintf("%s after %d misses", e.Kind, e.Misses)
	}
	return e.Kind.String()
}

// Errors of the package.
var (
	// ErrStopped is returned by a stopped Keeper or Scheduler.
	ErrStopped = errors.New("keepalive: stopped")
	// ErrNoAnswer is the error of a FlowFailed event when keep-alives timed out.
	ErrNoAnswer = errors.New("keepalive: no answer")
	// ErrConfig is wrapped by the errors NewKeeper returns for a bad KeeperConfig.
	ErrConfig = errors.New("keepalive: bad config")
)

// MarshalText returns the kind's name, so that JSON shows "stun", not 2.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalText returns the event's name.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalText returns the ping kind's name.
func (k PingKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalText returns the contact event's name.
func (k ContactEventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }
