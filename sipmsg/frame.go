package sipmsg

// FrameKind says what Frame found at the start of a stream buffer.
type FrameKind uint8

// Frame kinds.
const (
	FrameNone    FrameKind = iota // not enough input yet
	FrameMessage                  // a SIP message of Frame.Len bytes
	FramePing                     // RFC 5626 §3.5.1 keep-alive ping: CRLF CRLF
	FramePong                     // RFC 5626 §3.5.1 keep-alive pong: CRLF
)

var frameKindNames = [...]string{"none", "message", "ping", "pong"}

// String returns "none", "message", "ping" or "pong".
func (k FrameKind) String() string {
	if int(k) < len(frameKindNames) {
		return frameKindNames[k]
	}
	return "unknown"
}

// Frame describes the first unit in a stream buffer.
type Frame struct {
	Kind FrameKind // what the unit is: a SIP message, a keep-alive, or none yet
	Len  int       // bytes of the unit when Kind != FrameNone
	Need int       // when Kind == FrameNone: at least this many more bytes are needed
}

// NextFrame finds the first SIP message or keep-alive in a stream (TCP,
// TLS) buffer. A message needs its header section and Content-Length bytes
// of body (a missing Content-Length means no body, RFC 3261 §18.3). When the
// buffer holds less, Kind is FrameNone and Need says how many more bytes are
// needed at least (exactly, once the headers are complete). max bounds the
// message size (0: MaxMessageSize); beyond it NextFrame returns ErrTooLarge
// and the stream should be closed. Two Content-Length headers with
// different values, or one without a value, are ErrMalformed: where the
// next message starts would be a guess (request smuggling). A lone CRLF is
// reported as a pong, so a ping split by the network reads as two pongs.
func NextFrame(b []byte, max int) (Frame, error) {
	if max <= 0 {
		max = MaxMessageSize
	}
	if len(b) == 0 {
		return Frame{Need: 1}, nil
	}
	if b[0] == '\r' || b[0] == '\n' {
		switch {
		case len(b) >= 4 && b[0] == '\r' && b[1] == '\n' && b[2] == '\r' && b[3] == '\n':
			return Frame{Kind: FramePing, Len: 4}, nil
		case len(b) >= 2 && b[0] == '\r' && b[1] == '\n':
			return Frame{Kind: FramePong, Len: 2}, nil
		case b[0] == '\n':
			return Frame{Kind: FramePong, Len: 1}, nil
		case len(b) == 1:
			return Frame{Need: 1}, nil
		}
		return Frame{}, perr(0, "stream", ErrMalformed)
	}
	if !isToken(b[0]) {
		return Frame{}, perr(0, "stream", ErrMalformed)
	}
	// find the end of the header section
	limit := len(b)
	if limit > max {
		limit = max
	}
	hdrEnd := -1
	cl := -1
	lineStart := 0
	first := true
	for lineStart < limit {
		i := indexLF(b[:limit], lineStart)
		if i < 0 {
			break
		}
		line := b[lineStart:lineEnd(b, i)]
		if len(line) == 0 {
			hdrEnd = i + 1
			break
		}
		if !first && !isWS(line[0]) {
			if n, ok, bad := contentLength(line, max); bad {
				return Frame{}, perr(lineStart, "Content-Length", ErrMalformed)
			} else if ok {
				if cl >= 0 && n != cl { // two lengths: where the next message starts is unknown
					return Frame{}, perr(lineStart, "Content-Length", ErrMalformed)
				}
				cl = n
			}
		}
		first = false
		lineStart = i + 1
	}
	if hdrEnd < 0 {
		if len(b) >= max {
			return Frame{}, perr(max, "stream header", ErrTooLarge)
		}
		return Frame{Need: 1}, nil
	}
	total := hdrEnd
	if cl > 0 {
		total += cl
	}
	if total > max {
		return Frame{}, perr(hdrEnd, "stream body", ErrTooLarge)
	}
	if total > len(b) {
		return Frame{Need: total - len(b)}, nil
	}
	return Frame{Kind: FrameMessage, Len: total}, nil
}

// contentLength parses a header line if it is Content-Length (or l).
func contentLength(line []byte, max int) (n int, ok, bad bool) {
	// only "Content-Length" and "l" (maybe followed by white space) can match
	if len(line) < 2 || (line[0]|0x20 != 'c' && line[0]|0x20 != 'l') {
		return 0, false, false
	}
	c := indexByte(line, 0, ':')
	if c < 0 {
		return 0, false, false
	}
	name := line[:trimRight(line, 0, c)]
	if KindOf(name) != HdrContentLength {
		return 0, false, false
	}
	start := skipWS(line, c+1, len(line))
	v := line[start:trimRight(line, start, len(line))] // an empty value: start == len(line)
	n, ok = parseUint(v, max)
	if !ok {
		return 0, false, true
	}
	return n, true, false
}
