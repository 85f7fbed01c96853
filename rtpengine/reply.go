package rtpengine

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors from a Client wrap one of them (or ctx.Err()).
var (
	// ErrTimeout: no answer after every retransmission; the instance is down
	// or unreachable.
	ErrTimeout = errors.New("rtpengine: no answer")
	// ErrMalformedReply: the answer is not an ng reply (bad bencode, no
	// dictionary, no result); the error also wraps ErrBencode when the
	// encoding was bad.
	ErrMalformedReply = errors.New("rtpengine: malformed reply")
	// ErrRejected: rtpengine answered "error"; an *ErrorReply says why.
	ErrRejected = errors.New("rtpengine: request rejected")
	// ErrClosed: the client was closed, or its read loop ended.
	ErrClosed = errors.New("rtpengine: client closed")
	// ErrNoInstance: a Set has no instance that answers.
	ErrNoInstance = errors.New("rtpengine: no instance answers")
	// ErrConfig: a SetConfig without Client or instances, or an instance
	// address that is not ip:port.
	ErrConfig = errors.New("rtpengine: bad config")
)

// ErrorReply is rtpengine's "error" result with its "error-reason".
type ErrorReply struct {
	Command Command // the command rtpengine refused
	Reason  string  // its error-reason
}

// Error names the command and rtpengine's error-reason.
func (e *ErrorReply) Error() string {
	return fmt.Sprintf("rtpengine: %s rejected: %s", e.Command, e.Reason)
}

// Unwrap returns ErrRejected.
func (e *ErrorReply) Unwrap() error { return ErrRejected }

// Counters are a direction's or a call's packet counters.
type Counters struct {
	Packets int64 `json:"packets"` // packets relayed
	Bytes   int64 `json:"bytes"`   // bytes relayed
	Errors  int64 `json:"errors"`  // packets rtpengine could not relay
}

// Reply is rtpengine's answer to a Request.
type Reply struct {
	// Result is "ok" (or "pong" for a ping); errors never reach a Reply.
	Result string `json:"result"`
	// SDP is the rewritten SDP of an offer or answer, appended to the
	// buffer the caller passed in.
	SDP []byte `json:"-"`
	// Warning is rtpengine's "warning", if any (e.g. a delete of an unknown call).
	Warning string `json:"warning,omitempty"`
	// Created is when the call was created (query), in seconds since the epoch.
	Created int64 `json:"created,omitempty"`
	// RTP and RTCP are the call's totals (query).
	RTP  Counters `json:"rtp"`
	RTCP Counters `json:"rtcp"`
}

// ParseReply decodes the bencode dictionary of an ng reply (the part after
// the cookie and the space) with d and appends its SDP, if any, to sdp. An
// "error" result gives an *ErrorReply; bad input a wrapped ErrMalformedReply.
func ParseReply(d *Decoder, cmd Command, body, sdp []byte) (Reply, error) {
	v, err := d.Decode(body)
	if err != nil {
		return Reply{SDP: sdp}, fmt.Errorf("%w: %w", ErrMalformedReply, err)
	}
	if v.Kind() != Dict {
		return Reply{SDP: sdp}, fmt.Errorf("%w: a %s, not a dictionary", ErrMalformedReply, v.Kind())
	}
	res := v.Get("result")
	switch {
	case res.Kind() != String:
		return Reply{SDP: sdp}, fmt.Errorf("%w: no result", ErrMalformedReply)
	case res.Is("error"):
		return Reply{SDP: sdp}, &ErrorReply{Command: cmd, Reason: string(v.Get("error-reason").Bytes())}
	}
	r := Reply{Result: resultString(res.Bytes()), SDP: sdp}
	if w := v.Get("warning"); w.Kind() == String {
		r.Warning = string(w.Bytes())
	}
	if s := v.Get("sdp"); s.Kind() == String {
		r.SDP = append(r.SDP, s.Bytes()...)
	} else if cmd == Offer || cmd == Answer {
		return r, fmt.Errorf("%w: %s reply without sdp", ErrMalformedReply, cmd)
	}
	if cmd == Query {
		r.Created, _ = v.Get("created").Int()
		tot := v.Get("totals")
		r.RTP = counters(tot.Get("RTP"))
		r.RTCP = counters(tot.Get("RTCP"))
	}
	return r, nil
}

// resultString returns the common results without allocating.
func resultString(b []byte) string {
	switch string(b) {
	case "ok":
		return "ok"
	case "pong":
		return "pong"
	}
	return string(b)
}

func counters(v Value) Counters {
	var c Counters
	c.Packets, _ = v.Get("packets").Int()
	c.Bytes, _ = v.Get("bytes").Int()
	c.Errors, _ = v.Get("errors").Int()
	return c
}
