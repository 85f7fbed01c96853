package nat

import (
	"errors"
	"fmt"
)

// Sentinel errors of the STUN client, Discover and the server. Errors
// returned by this package wrap them with what was being done; test them with
// errors.Is.
var (
	// ErrNoResponse means a STUN transaction ended without an answer: every
	// retransmission went unanswered, or the context ended first (then the
	// error also matches the context's error).
	ErrNoResponse = errors.New("nat: no STUN response")
	// ErrMalformed means a packet that claimed to be the STUN answer could not
	// be used: it did not decode, its FINGERPRINT was wrong, or a success
	// response carried no mapped address.
	ErrMalformed = errors.New("nat: malformed STUN message")
	// ErrNotSTUN means a packet is not a STUN message (see IsSTUN).
	ErrNotSTUN = errors.New("nat: not a STUN message")
	// ErrClosed means the Client or Server was closed.
	ErrClosed = errors.New("nat: closed")
	// ErrNoServer means Discover or a Binding was called without a (valid)
	// STUN server.
	ErrNoServer = errors.New("nat: no STUN server given")
	// ErrConfig means a ServerConfig cannot work (no primary socket, a
	// socket on an unspecified address, alternates that do not fit), or a
	// Server was started twice.
	ErrConfig = errors.New("nat: bad config")
	// ErrUnknownValue means a text form (a JSON field of Result) names no
	// known behaviour or RFC 3489 type.
	ErrUnknownValue = errors.New("nat: unknown value")
)

// ServerError is a STUN error response (class 0x11x) from a server, such as
// 400 Bad Request or 420 Unknown Attribute. Match it with errors.As.
type ServerError struct {
	Code   int    // STUN error code, 300..699
	Reason string // reason phrase the server sent, possibly empty
}

// Error returns "stun error 420: Unknown Attribute".
func (e *ServerError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("stun error %d", e.Code)
	}
	return fmt.Sprintf("stun error %d: %s", e.Code, e.Reason)
}
