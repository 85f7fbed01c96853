package sdp

import (
	"bytes"
	"fmt"
	"strconv"
)

// AppendRewriteSIP appends the SIP message msg (RFC 3261, one whole message
// as received from a datagram or framed from a stream) to dst with its SDP
// body rewritten by AppendRewrite and the Content-Length value (header
// "Content-Length" or compact "l") set to the new body length, its padding
// kept. Headers are otherwise copied byte for byte; bytes after the body
// that Content-Length excludes are kept after it.
//
// The body is rewritten only when the message says Content-Type (or "c")
// application/sdp; any other message is copied unchanged with a zero
// Result. It scans the header block for these two headers only and does
// not otherwise parse SIP: that is the sipmsg package's job, which calls
// this. With a buffer of enough capacity it does not allocate.
//
// Errors: those of AppendRewrite, ErrTooLarge, and ErrMalformed (wrapped)
// for a message with no blank line after its headers, a repeated or
// unreadable Content-Length, or a Content-Length longer than the message.
// On error dst is returned unchanged.
func AppendRewriteSIP(dst, msg []byte, opts *Options) ([]byte, Result, error) {
	if len(msg) > MaxBodySize {
		return dst, Result{}, ErrTooLarge
	}
	if _, err := opts.check(); err != nil {
		return dst, Result{}, err
	}
	h, err := scanSIPHeaders(msg)
	if err != nil {
		return dst, Result{}, err
	}
	bodyEnd := len(msg)
	if h.clStart >= 0 {
		bodyEnd = h.bodyStart + h.contentLength
	}
	body := msg[h.bodyStart:bodyEnd]
	if !h.isSDP || len(body) == 0 {
		return append(dst, msg...), Result{}, nil
	}
	// Headers, then the rewritten body after them; a changed body's length
	// then replaces the Content-Length digits in place.
	out := append(dst, msg[:h.bodyStart]...)
	b0 := len(out)
	out, res, err := AppendRewrite(out, body, opts)
	if err != nil {
		return dst, res, err
	}
	if res.Changed() && h.clStart >= 0 {
		var buf [20]byte
		out = replaceSpan(out, len(dst)+h.clStart, len(dst)+h.clEnd, strconv.AppendUint(buf[:0], uint64(len(out)-b0), 10))
	}
	return append(out, msg[bodyEnd:]...), res, nil
}

// replaceSpan replaces b[s:e] with r, moving the bytes after it.
func replaceSpan(b []byte, s, e int, r []byte) []byte {
	n := len(b)
	switch d := len(r) - (e - s); {
	case d < 0:
		copy(b[e+d:], b[e:])
		b = b[:n+d]
	case d > 0:
		b = append(b, r[:d]...) // room for the longer r
		copy(b[e+d:], b[e:n])
	}
	copy(b[s:], r)
	return b
}

// sipHeaders is what AppendRewriteSIP needs from a header block.
type sipHeaders struct {
	bodyStart     int // offset of the body (after the blank line)
	clStart       int // Content-Length value digits, -1 if absent
	clEnd         int
	contentLength int
	isSDP         bool // Content-Type is application/sdp
}

var (
	hdrContentLength = []byte("content-length")
	hdrContentType   = []byte("content-type")
	appSDP           = []byte("application/sdp")
)

func scanSIPHeaders(msg []byte) (sipHeaders, error) {
	h := sipHeaders{clStart: -1, bodyStart: -1}
	if len(msg) == 0 {
		return h, fmt.Errorf("%w: empty SIP message", ErrMalformed)
	}
	first := true
	for i := 0; i < len(msg); {
		ln := nextLine(msg, i)
		i = ln.next
		if ln.end == ln.start {
			if ln.next == ln.end { // last line without line ending
				break
			}
			h.bodyStart = ln.next
			break
		}
		if first { // request or status line
			first = false
			continue
		}
		l := msg[ln.start:ln.end]
		if c := l[0] | 0x20; c != 'c' && c != 'l' {
			continue // not one of the four names; folded continuations start with a blank
		}
		colon := bytes.IndexByte(l, ':')
		if colon < 0 {
			continue
		}
		name := bytes.TrimRight(l[:colon], " \t")
		val := colon + 1
		for val < len(l) && (l[val] == ' ' || l[val] == '\t') {
			val++
		}
		switch {
		case bytes.EqualFold(name, hdrContentLength) || (len(name) == 1 && name[0]|0x20 == 'l'):
			if h.clStart >= 0 {
				return h, fmt.Errorf("%w: repeated Content-Length", ErrMalformed)
			}
			e, n := val, 0
			for e < len(l) && l[e] >= '0' && l[e] <= '9' && e-val < 8 {
				n = n*10 + int(l[e]-'0')
				e++
			}
			if e == val || len(bytes.TrimRight(l[e:], " \t")) > 0 {
				return h, fmt.Errorf("%w: bad Content-Length %q", ErrMalformed, l[val:])
			}
			h.clStart, h.clEnd, h.contentLength = ln.start+val, ln.start+e, n
		case bytes.EqualFold(name, hdrContentType) || (len(name) == 1 && name[0]|0x20 == 'c'):
			v := l[val:]
			h.isSDP = len(v) >= len(appSDP) && bytes.EqualFold(v[:len(appSDP)], appSDP) &&
				(len(v) == len(appSDP) || v[len(appSDP)] == ';' || v[len(appSDP)] == ' ' || v[len(appSDP)] == '\t')
		}
	}
	if h.bodyStart < 0 {
		return h, fmt.Errorf("%w: no blank line after the SIP headers", ErrMalformed)
	}
	if h.clStart >= 0 && h.bodyStart+h.contentLength > len(msg) {
		return h, fmt.Errorf("%w: Content-Length %d longer than the %d body bytes", ErrMalformed, h.contentLength, len(msg)-h.bodyStart)
	}
	return h, nil
}
