package sipmsg

// Transport is a SIP transport protocol. The numbers are Kamailio's protocol
// ids, which its ;alias=ip~port~proto parameter carries.
type Transport uint8

// Transports.
const (
	TransportUnknown Transport = 0
	UDP              Transport = 1
	TCP              Transport = 2
	TLS              Transport = 3
	SCTP             Transport = 4
	WS               Transport = 5
	WSS              Transport = 6
)

var transportNames = [...]string{"", "UDP", "TCP", "TLS", "SCTP", "WS", "WSS"}

// String returns the upper-case Via name of t ("UDP"), "" when unknown.
func (t Transport) String() string {
	if int(t) < len(transportNames) {
		return transportNames[t]
	}
	return ""
}

// MarshalText returns the lower-case name of t ("udp"), for JSON.
func (t Transport) MarshalText() ([]byte, error) {
	if t == TransportUnknown {
		return []byte{}, nil
	}
	return []byte(t.lowerName()), nil
}

// UnmarshalText reads what MarshalText writes (any case; empty is
// TransportUnknown) and fails with ErrMalformed for another name.
func (t *Transport) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*t = TransportUnknown
		return nil
	}
	if *t = ParseTransport(b); *t == TransportUnknown {
		return perr(0, "transport", ErrMalformed)
	}
	return nil
}

// ParseTransport returns the transport named b (any case), as written in a
// Via or a transport= URI parameter.
func ParseTransport(b []byte) Transport {
	for i := 1; i < len(transportNames); i++ {
		if equalFold(b, transportNames[i]) {
			return Transport(i)
		}
	}
	return TransportUnknown
}

// Reliable reports whether t delivers in order and retransmits itself
// (TCP, TLS, SCTP, WS, WSS): requests over it are not retransmitted (RFC
// 3261 §17.1.1.2) and its keep-alives are CRLF ping/pong (RFC 5626 §4.4.1).
func (t Transport) Reliable() bool { return t >= TCP && t <= WSS }

// DefaultPort returns 5061 for TLS and WSS, 5060 otherwise.
func (t Transport) DefaultPort() uint16 {
	if t == TLS || t == WSS {
		return 5061
	}
	return 5060
}

func (t Transport) lowerName() string {
	switch t {
	case TCP:
		return "tcp"
	case TLS:
		return "tls"
	case SCTP:
		return "sctp"
	case WS:
		return "ws"
	case WSS:
		return "wss"
	}
	return "udp"
}
