package outbound

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/sipnat/sipnat/sipmsg"
)

// EventKind says what happened to a flow.
type EventKind uint8

// The events of a flow, in the order a flow's life brings them.
const (
	// Connected: a connection to the edge is open (not yet registered).
	Connected EventKind = iota + 1
	// Registered: the REGISTER over the connection succeeded; the UA is
	// reachable through this flow.
	Registered
	// FlowFailed: a registered flow broke (keep-alive unanswered, the
	// connection closed or reset). A new one is formed at once.
	FlowFailed
	// Retrying: forming the flow failed; the next attempt comes after Wait
	// (RFC 5626 §4.5 backoff).
	Retrying
	// MappingChanged: on UDP, STUN saw a new public address; a
	// FlowFailed with ErrMappingChanged follows and the flow is formed
	// again.
	MappingChanged
)

var eventNames = [...]string{"", "connected", "registered", "flow-failed", "retrying", "mapping-changed"}

// String returns the event's name.
func (k EventKind) String() string {
	if int(k) < len(eventNames) && k > 0 {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// MarshalText returns the name, for JSON.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is what a flow tells the app through FlowConfig.OnEvent.
type Event struct {
	Kind      EventKind        `json:"kind"`                // what happened
	At        time.Time        `json:"at"`                  // when, on the flow's clock
	Server    netip.AddrPort   `json:"server"`              // the edge of the flow
	Transport sipmsg.Transport `json:"-"`                   // the flow's transport
	Local     netip.AddrPort   `json:"local,omitzero"`      // Connected, Registered
	Outbound  bool             `json:"outbound,omitempty"`  // Registered: the answer had Require: outbound
	FlowTimer time.Duration    `json:"flow_timer,omitzero"` // Registered: the answer's Flow-Timer
	Interval  time.Duration    `json:"interval,omitzero"`   // Registered: the keep-alive base interval
	// Reformed (Registered): this flow replaces one that failed. Its
	// connection and Contact are new, so a dialog set up over the old flow
	// still targets the gone one: send a target refresh in it (a re-INVITE
	// or UPDATE with the new Contact, RFC 3261 §12.2) over this flow.
	Reformed  bool           `json:"reformed,omitempty"`
	Wait      time.Duration  `json:"wait,omitzero"`      // Retrying: the backoff
	Failures  int            `json:"failures,omitempty"` // Retrying: attempts failed in a row
	AllFailed bool           `json:"all_failed,omitempty"`
	Mapping   netip.AddrPort `json:"mapping,omitzero"`  // MappingChanged
	Previous  netip.AddrPort `json:"previous,omitzero"` // MappingChanged
	Err       error          `json:"-"`                 // FlowFailed, Retrying
}

// String describes the event for a person.
func (e Event) String() string {
	s := fmt.Sprintf("%s %s %s", e.Kind, e.Transport, e.Server)
	switch e.Kind {
	case Registered:
		s += fmt.Sprintf(" from %s (outbound %t, Flow-Timer %v, keep-alive every %v)", e.Local, e.Outbound, e.FlowTimer, e.Interval)
		if e.Reformed {
			s += ", replacing the flow that failed"
		}
	case FlowFailed:
		s += fmt.Sprintf(": %v", e.Err)
	case Retrying:
		s += fmt.Sprintf(" in %v (failure %d): %v", e.Wait, e.Failures, e.Err)
	case MappingChanged:
		s += fmt.Sprintf(": %s -> %s", e.Previous, e.Mapping)
	}
	return s
}

// Group is the set of a UA's flows (one per edge proxy and reg-id, RFC
// 5626 §4.2): a failed flow backs off from 30 s when every flow is down
// and from 90 s while another still works (§4.5). The zero value is ready.
type Group struct {
	mu    sync.Mutex
	flows []*Flow
}

func (g *Group) add(f *Flow) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.flows = append(g.flows, f)
}

// Up returns how many flows of the group are registered now.
func (g *Group) Up() int {
	g.mu.Lock()
	fl := append([]*Flow(nil), g.flows...)
	g.mu.Unlock()
	n := 0
	for _, f := range fl {
		if f.Up() {
			n++
		}
	}
	return n
}

func (g *Group) allDown() bool { return g.Up() == 0 }
