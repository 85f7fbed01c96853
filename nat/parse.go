package nat

import (
	"fmt"
	"sync"

	"github.com/pion/stun/v2"
)

var msgPool = sync.Pool{New: func() any { return &stun.Message{Raw: make([]byte, 0, 128)} }}

// ParseResponse decodes a STUN Binding response on its own, for callers
// that match transactions themselves. A success response gives its
// addresses (Response.From and RTT are left zero); an error response a
// *ServerError; anything else ErrNotSTUN or ErrMalformed. It does not
// allocate for a success response in steady state.
func ParseResponse(b []byte) (Response, error) {
	if !IsSTUN(b) {
		return Response{}, ErrNotSTUN
	}
	m := msgPool.Get().(*stun.Message)
	defer msgPool.Put(m)
	var r Response
	serverErr, err := decodeAnswerInto(m, b, &r)
	if err != nil {
		return Response{}, fmt.Errorf("parse response: %w", err)
	}
	if serverErr != nil {
		return Response{}, serverErr
	}
	return r, nil
}
