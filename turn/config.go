package turn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/sipmsg"
)

// Defaults of Config.
const (
	DefaultLifetime          = 10 * time.Minute // requested allocation lifetime (RFC 8656 default)
	DefaultPermissionRefresh = 2 * time.Minute  // permissions last 300 s, channels 600 s
	DefaultKeepAlive         = 15 * time.Second // NAT binding towards the server, when not measured
	DefaultRTO               = 500 * time.Millisecond
	DefaultAttempts          = 7
	DefaultMaxPeers          = 16
	// StreamWriteTimeout bounds a write on a TCP or TLS stream: one the
	// stream does not take in this long (its send buffer stays full, as
	// when a NAT forgot the connection) gives the stream up, and the
	// allocation is made again on a new one.
	StreamWriteTimeout = 2 * time.Second
)

// Transport is how the client reaches the TURN server: sipnat's one
// transport type, sipmsg.Transport, of which TURN uses UDP, TCP and TLS.
// The relayed side is always UDP (REQUESTED-TRANSPORT 17), which is what
// RTP needs.
type Transport = sipmsg.Transport

// The transports to the server.
const (
	UDP = sipmsg.UDP // on the caller's socket (New)
	TCP = sipmsg.TCP // RFC 8656 section 3.1, on a stream the client dials (Dial)
	TLS = sipmsg.TLS // TCP with TLS (RFC 8656 section 3.1)
)

// Config configures a Client. Server, Username and Password are required;
// the zero value of everything else works.
type Config struct {
	// Server is the TURN server's address.
	Server netip.AddrPort
	// Username and Password are the long-term credentials (RFC 8489
	// section 9.2). The realm and nonce come from the server's 401.
	Username, Password string
	// Transport is UDP (the default) with New, TCP or TLS with Dial.
	Transport Transport
	// DialContext dials the stream for TCP and TLS; nil means a net.Dialer
	// for TCP. For TLS it must return TLS connections, handshake done:
	// (&tls.Dialer{Config: c}).DialContext. The package does not link
	// crypto/tls itself (1.8 MB of a UA's binary; the whole
	// package adds about 140 KB to one that runs nat.Discover).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Lifetime is the allocation lifetime asked for; the server may grant
	// less. Zero means DefaultLifetime. The client refreshes at half the
	// granted lifetime.
	Lifetime time.Duration
	// PermissionRefresh is how often permissions and channel bindings are
	// renewed; it must be below the server's permission lifetime (300 s in
	// RFC 8656). Zero means DefaultPermissionRefresh.
	PermissionRefresh time.Duration
	// KeepAlive is how often the client sends a Binding request to the
	// server so the NAT keeps the flow open and a changed mapping is seen
	// (a rebooted router). Set it from the measured binding lifetime
	// (nat.Result.SIP.KeepAlive); zero means DefaultKeepAlive, negative
	// turns it off.
	KeepAlive time.Duration

	// EvenPort asks for an even relayed port and for the next port to be
	// reserved (EVEN-PORT with the R bit, RFC 8656 section 14.6): RTP on the
	// even port, RTCP on the odd one through a second Client whose Config
	// carries Allocation.Reservation.
	EvenPort bool
	// Reservation, when not zero, is a RESERVATION-TOKEN from another
	// client's EvenPort allocation: this allocation gets the reserved port.
	Reservation uint64
	// Mobility asks for a mobility ticket (RFC 8016). When the NAT moves
	// the flow to the server (a rebooted router), the client then moves
	// the allocation to the new flow with a Refresh instead of allocating
	// again: the relayed address, permissions and channels stay, and the
	// peer needs no new SDP. A server that refuses mobility (coturn
	// without --mobility answers 405) gets an Allocate without it.
	Mobility bool

	// RTO and Attempts are the retransmission timeout (doubling) and the
	// number of sends of a request over UDP; zero means DefaultRTO and
	// DefaultAttempts. Over TCP and TLS a request waits 39.5 s at most.
	RTO      time.Duration
	Attempts int
	// MaxPeers bounds the peers with permissions and channels; zero means
	// DefaultMaxPeers.
	MaxPeers int

	// CallerReads says the caller owns the read loop of the UDP conn and
	// hands every packet to HandlePacket. When false, the client reads the
	// conn itself until Close and passes what is not the server's to
	// Unhandled. Streams are always read by the client.
	CallerReads bool
	// Unhandled receives, when the client reads the UDP conn, every packet
	// that is not from the TURN server (direct RTP, STUN). b is only valid
	// during the call.
	Unhandled func(b []byte, from netip.AddrPort)
	// OnData receives relayed data when the client reads (UDP without
	// CallerReads, TCP, TLS). b is only valid during the call.
	OnData func(b []byte, peer netip.AddrPort)
	// OnEvent receives the client's events (allocation lost, refresh
	// failed, recovered). It is called from the client's timers, one at a
	// time; it must not block.
	OnEvent func(Event)

	// Clock times refreshes, keep-alives and retransmissions; nil means
	// the system clock.
	Clock clock.Clock
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Allocation is what the server granted.
type Allocation struct {
	// Relayed is the relayed transport address (XOR-RELAYED-ADDRESS): the
	// address peers send to, and the one to put in SDP.
	Relayed netip.AddrPort `json:"relayed"`
	// Mapped is the client's address as the server sees it
	// (XOR-MAPPED-ADDRESS): the NAT's public side of the flow.
	Mapped netip.AddrPort `json:"mapped"`
	// Lifetime is the granted lifetime (LIFETIME).
	Lifetime time.Duration `json:"lifetime"`
	// Reservation is the RESERVATION-TOKEN of an EvenPort allocation (the
	// port above Relayed is kept for it), zero when none.
	Reservation uint64 `json:"reservation,omitempty"`
	// Mobile tells whether the server gave a mobility ticket (RFC 8016).
	Mobile bool `json:"mobile,omitempty"`
	// Server and Transport say where the allocation lives.
	Server    netip.AddrPort `json:"server"`
	Transport Transport      `json:"transport"`
}

// String gives the relayed address, the server and transport, the mapped address and the lifetime.
func (a Allocation) String() string {
	return fmt.Sprintf("relayed %s via %s %s (mapped %s, lifetime %v)", a.Relayed, a.Transport, a.Server, a.Mapped, a.Lifetime)
}

// EventKind says what happened to an allocation.
type EventKind int

// The events of a Client.
const (
	// EventRefreshFailed: a Refresh, permission or channel renewal, or a
	// keep-alive got no good answer; the client retries.
	EventRefreshFailed EventKind = iota + 1
	// EventLost: the allocation is gone (437 Allocation Mismatch, expired,
	// or the NAT gave the flow a new public address); the client
	// allocates again.
	EventLost
	// EventRecovered: a new allocation replaced a lost one; permissions and
	// channels are restored. Relayed may differ from before: a UA then
	// updates its SDP (re-INVITE).
	EventRecovered
	// EventMoved: the NAT moved the flow to the server and the allocation
	// followed it with its mobility ticket (RFC 8016): same relayed
	// address, nothing for the peer to learn.
	EventMoved
)

// String says what happened in words ("allocation lost").
func (k EventKind) String() string {
	switch k {
	case EventRefreshFailed:
		return "refresh failed"
	case EventLost:
		return "allocation lost"
	case EventRecovered:
		return "recovered"
	case EventMoved:
		return "moved with the flow"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a change in the client's allocation.
type Event struct {
	Kind     EventKind      `json:"kind"`              // what happened
	Relayed  netip.AddrPort `json:"relayed"`           // the relayed address now (zero while lost)
	Previous netip.AddrPort `json:"previous,omitzero"` // the relayed address before (EventRecovered)
	Err      error          `json:"-"`                 // why (EventRefreshFailed, EventLost)
}

// String says what happened and to which relayed address.
func (e Event) String() string {
	s := "turn: " + e.Kind.String()
	switch {
	case e.Kind == EventLost:
		s += fmt.Sprintf(", was %s", e.Previous)
	case e.Kind == EventRecovered && e.Previous != e.Relayed:
		s += fmt.Sprintf(", relayed %s (was %s)", e.Relayed, e.Previous)
	case e.Relayed.IsValid():
		s += fmt.Sprintf(", relayed %s", e.Relayed)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Errors of the client; check them with errors.Is. A TURN error response is
// also an *Error.
var (
	ErrUnauthorized         = errors.New("turn: wrong username or password (401 after credentials)")
	ErrUnreachable          = errors.New("turn: no answer from the server")
	ErrQuota                = errors.New("turn: allocation quota reached (486)")
	ErrUnsupportedTransport = errors.New("turn: transport not supported by the server (442)")
	ErrForbidden            = errors.New("turn: forbidden (403)")
	ErrMismatch             = errors.New("turn: allocation mismatch (437)")
	ErrNoAllocation         = errors.New("turn: no allocation")
	ErrTooManyPeers         = errors.New("turn: too many peers")
	ErrClosed               = errors.New("turn: client closed")
	ErrMalformed            = errors.New("turn: malformed answer")
	// ErrConfig: a Config the constructor cannot use (no server or
	// username, a transport New or Dial does not serve).
	ErrConfig = errors.New("turn: bad config")
	// ErrTooLarge: data that does not fit one TURN message.
	ErrTooLarge = errors.New("turn: too large")
)

// Error is an error response of the server.
type Error struct {
	Method string // the request: Allocate, Refresh, CreatePermission, ChannelBind
	Code   int    // ERROR-CODE
	Reason string // its reason phrase
}

// Error gives the request, the ERROR-CODE and its reason phrase.
func (e *Error) Error() string {
	s := fmt.Sprintf("turn: %s: %d %s", e.Method, e.Code, e.Reason)
	if e.Code == 401 {
		s += " (wrong username or password)"
	}
	return s
}

// Unwrap maps the codes the client gives meaning to onto the sentinels.
func (e *Error) Unwrap() error {
	switch e.Code {
	case 401:
		return ErrUnauthorized
	case 403:
		return ErrForbidden
	case 437:
		return ErrMismatch
	case 442:
		return ErrUnsupportedTransport
	case 486:
		return ErrQuota
	}
	return nil
}
