package sipmsg

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error returned by this package matches one of them
// with errors.Is.
var (
	// ErrMalformed: the input is not a SIP message or a header value is not
	// what its grammar requires.
	ErrMalformed = errors.New("sipmsg: malformed message")
	// ErrIncomplete: the input ends before the message does (a datagram was
	// cut, or a stream has not delivered the rest yet).
	ErrIncomplete = errors.New("sipmsg: incomplete message")
	// ErrTooLarge: a size bound (message, header section, body) was hit.
	ErrTooLarge = errors.New("sipmsg: message too large")
	// ErrTooManyHeaders: the message has more than MaxHeaders header lines.
	ErrTooManyHeaders = errors.New("sipmsg: too many headers")
	// ErrNoHeader: a header the operation needs is missing.
	ErrNoHeader = errors.New("sipmsg: header missing")
	// ErrNotRequest / ErrNotResponse: the operation needs the other kind of message.
	ErrNotRequest  = errors.New("sipmsg: not a request")
	ErrNotResponse = errors.New("sipmsg: not a response")
	// ErrBadAddress: an address argument is not usable (invalid, zero port).
	ErrBadAddress = errors.New("sipmsg: bad address")
	// ErrVersion: the start line or the top Via names a SIP version other
	// than 2.0 (Check; a proxy answers 505).
	ErrVersion = errors.New("sipmsg: unsupported SIP version")
	// ErrRequestURI: the Request-URI is in <>, does not scan or carries
	// headers (Check; a proxy answers 400).
	ErrRequestURI = errors.New("sipmsg: bad Request-URI")
	// ErrForbiddenDestination: an alias, received URI or Request-URI names
	// a destination a DestPolicy refuses (see DestError).
	ErrForbiddenDestination = errors.New("sipmsg: forbidden destination")
)

// ParseError says where in the input scanning failed and why. It unwraps to
// one of the sentinels.
type ParseError struct {
	Offset int    // byte offset in the message
	What   string // what was being read ("start line", "Via", ...)
	Err    error  // sentinel
}

// Error says what was being read, where, and the sentinel.
func (e *ParseError) Error() string {
	return "sipmsg: " + e.What + " at offset " + strconv.Itoa(e.Offset) + ": " + trimPrefix(e.Err.Error())
}

// Unwrap returns the sentinel.
func (e *ParseError) Unwrap() error { return e.Err }

func trimPrefix(s string) string {
	const p = "sipmsg: "
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// perr is kept out of line: inlined, each of its call sites (a dozen in
// Parse alone) carried an allocation in the hot functions' code, about a
// quarter of Parse's and parseURI's size, and the NAT path's code did not
// fit the instruction cache (about 6 % slower).
//
//go:noinline
func perr(off int, what string, err error) error {
	return &ParseError{Offset: off, What: what, Err: err}
}
