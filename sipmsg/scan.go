package sipmsg

import (
	"bytes"
	"math/bits"

	"github.com/sipnat/sipnat/internal/linefeed"
)

// Bounds of the scanner.
const (
	// MaxHeaders is the largest number of header lines a Message holds.
	MaxHeaders = 96
	// MaxMessageSize is the largest message Parse accepts (start line,
	// headers and body).
	MaxMessageSize = 64 << 10
)

// Span is a byte range [Start, End) of a message buffer.
type Span struct {
	Start int // offset of the first byte
	End   int // offset after the last byte
}

// Len returns the length of s.
func (s Span) Len() int { return s.End - s.Start }

// In returns the bytes of s in b.
func (s Span) In(b []byte) []byte { return b[s.Start:s.End] }

// header is one header field: the whole line(s) including the line end,
// the name and the value without surrounding white space.
type header struct {
	kind  HeaderKind
	line  Span
	name  Span
	value Span
}

// Message is a scanned SIP message. It keeps offsets into the buffer given
// to Parse, never copies of it: the buffer must not change while the
// Message is in use. A Message is about 4 KiB; reuse one per goroutine.
type Message struct {
	buf      []byte
	request  bool
	method   Span
	ruri     Span
	version  Span
	status   int
	reason   Span
	start    Span // start line including its line end
	hdrs     [MaxHeaders]header
	nhdr     int
	hdrEnd   int // offset of the empty line ending the header section
	body     Span
	clIdx    int // index of the Content-Length header or -1
	trailing int // octets after the Content-Length body, dropped (RFC 4475 §3.1.1.8)

	// parsed on first use, shared by NATTest and the rewrites
	viaState uint8 // cacheNone, cacheOK, cacheErr
	via      Via
	viaErr   error
	cstate   uint8 // cacheNone, cacheOK, cacheOverflow
	ncontact int
	contacts [maxCachedContacts]contactEntry
	cwalk    contactWalker // where the walk stopped when the cache overflowed
	// headers whose name may be Contact (seven bytes, 'o' second, or "m"), one bit each
	maybeContact [2]uint64
	extra        contactEntry // the current value of a walk past the cache

	ed editor // scratch space of the rewrites, reused so it is not cleared per call
}

const (
	cacheNone uint8 = iota
	cacheOK
	cacheErr
	cacheOverflow
)

// maxCachedContacts is how many Contact values a Message keeps parsed;
// more are parsed again on every use.
const maxCachedContacts = 8

type contactEntry struct {
	na  NameAddr
	u   URI
	err error
}

// Parse scans one SIP message held in b (a datagram, or one frame cut from
// a stream with Frame). When Content-Length is absent the body is the rest
// of b (RFC 3261 §18.3 for datagrams). Octets after the Content-Length
// body are not part of the message (RFC 3261 §18.3, RFC 4475 §3.1.1.8):
// Bytes, Len and every Append function stop where the body ends, so a
// second request riding in the same datagram is never forwarded; Trailing
// says how many octets were dropped. Parse never allocates and never
// modifies b.
func (m *Message) Parse(b []byte) error { return m.parse(b, true) }

// parse is Parse; fast false reads every header line with the Go loop
// alone (scanHeaders), which the tests compare with the fast path.
func (m *Message) parse(b []byte, fast bool) error {
	m.buf = nil
	m.nhdr = 0
	m.clIdx = -1
	m.trailing = 0
	m.viaState = cacheNone
	m.cstate = cacheNone
	m.maybeContact = [2]uint64{}
	if len(b) > MaxMessageSize {
		return perr(MaxMessageSize, "message", ErrTooLarge)
	}
	// the start line's end: most start lines end in the first 64 bytes,
	// whose line feeds one SSE2 mask gives (bytes.IndexByte over the whole
	// message, the same instruction count, took 16 ns more of the paired
	// benchmark; searching the first 32 bytes of a '>' or closing '"' on
	// their own, to keep IndexByte off its AVX2 path, took 28 ns more)
	le := -1
	if lf := linefeed.Mask(b, 0); lf != 0 {
		le = bits.TrailingZeros64(lf)
	} else if len(b) > 64 {
		le = indexLF(b, 64)
	}
	if le < 0 {
		if len(b) > 0 && !isToken(b[0]) {
			return perr(0, "start line", ErrMalformed)
		}
		return perr(len(b), "start line", ErrIncomplete)
	}
	if err := m.parseStartLine(b, le); err != nil {
		return err
	}
	m.start = Span{0, le + 1}
	pos, maybeCL, err := m.scanHeaders(b, le+1, fast)
	if err != nil {
		return err
	}
	m.buf = b
	m.body = Span{pos, len(b)}
	// the Content-Length values, in header order: the first sets the
	// body's length, any other must agree
	for w, marks := range maybeCL {
		for ; marks != 0; marks &= marks - 1 {
			i := 64*w + bits.TrailingZeros64(marks)
			h := &m.hdrs[i]
			if !kindIs(h.name.In(b), HdrContentLength) {
				continue
			}
			h.kind = HdrContentLength
			n, ok := parseUint(h.value.In(b), MaxMessageSize)
			if !ok {
				m.buf = nil
				return perr(h.value.Start, "Content-Length", ErrMalformed)
			}
			if m.clIdx >= 0 && n != m.body.Len() {
				m.buf = nil
				return perr(h.value.Start, "Content-Length", ErrMalformed)
			}
			if pos+n > len(b) {
				m.buf = nil
				return perr(len(b), "body", ErrIncomplete)
			}
			m.clIdx = i
			m.body.End = pos + n
		}
	}
	if m.clIdx < 0 {
		return nil
	}
	m.trailing = len(b) - m.body.End
	m.buf = b[:m.body.End:m.body.End]
	return nil
}

func (m *Message) parseStartLine(b []byte, le int) error {
	end := lineEnd(b, le)
	line := b[:end]
	if hasPrefixFold(line, "SIP/") { // Status-Line
		m.request = false
		sp := indexByte(line, 0, ' ')
		if sp < 0 || !validVersion(line[:sp]) {
			return perr(0, "status line", ErrMalformed)
		}
		m.version = Span{0, sp}
		i := sp + 1
		if i+3 > end || !isDigit(line[i]) || !isDigit(line[i+1]) || !isDigit(line[i+2]) ||
			(i+3 < end && line[i+3] != ' ') {
			return perr(i, "status code", ErrMalformed)
		}
		m.status = int(line[i]-'0')*100 + int(line[i+1]-'0')*10 + int(line[i+2]-'0')
		if m.status < 100 {
			return perr(i, "status code", ErrMalformed)
		}
		rs := i + 3
		if rs < end {
			rs++
		}
		m.reason = Span{rs, end}
		return nil
	}
	m.request = true
	m.status = 0
	i := 0
	for i < end && isToken(line[i]) {
		i++
	}
	if i == 0 || i >= end || line[i] != ' ' {
		return perr(i, "request line", ErrMalformed)
	}
	m.method = Span{0, i}
	us := i + 1
	ue := indexByte(line, us, ' ')
	if ue <= us {
		return perr(us, "request-URI", ErrMalformed)
	}
	m.ruri = Span{us, ue}
	if !validVersion(line[ue+1:]) {
		return perr(ue+1, "SIP version", ErrMalformed)
	}
	m.version = Span{ue + 1, end}
	return nil
}

func validVersion(v []byte) bool {
	if string(v) == "SIP/2.0" { // the usual case
		return true
	}
	if !hasPrefixFold(v, "SIP/") || len(v) < 7 {
		return false
	}
	dot := false
	for _, c := range v[4:] {
		switch {
		case c == '.' && !dot:
			dot = true
		case isDigit(c):
		default:
			return false
		}
	}
	return dot && v[4] != '.' && v[len(v)-1] != '.'
}

// Bytes returns the message in the buffer it was scanned from: start line,
// headers and body, without the octets Trailing counts.
func (m *Message) Bytes() []byte { return m.buf }

// Trailing returns how many octets followed the Content-Length body in the
// buffer given to Parse. They are no part of the message and no Append
// function copies them: on a datagram they are garbage or a smuggled second
// request (RFC 4475 §3.1.1.8), which a proxy drops and may count or log.
func (m *Message) Trailing() int { return m.trailing }

// Len returns the length of the message in its buffer (start line, headers
// and Content-Length bytes of body).
func (m *Message) Len() int { return m.body.End }

// IsRequest reports whether the message is a request.
func (m *Message) IsRequest() bool { return m.request }

// Method returns the request method, nil for a response.
func (m *Message) Method() []byte {
	if !m.request {
		return nil
	}
	return m.method.In(m.buf)
}

// IsMethod reports whether the message is a request with method name
// (case-sensitive, as RFC 3261 requires).
func (m *Message) IsMethod(name string) bool {
	return m.request && string(m.method.In(m.buf)) == name
}

// RequestURI returns the Request-URI, nil for a response.
func (m *Message) RequestURI() []byte {
	if !m.request {
		return nil
	}
	return m.ruri.In(m.buf)
}

// RequestURISpan returns where the Request-URI is in the buffer.
func (m *Message) RequestURISpan() Span { return m.ruri }

// StatusCode returns the status code of a response, 0 for a request.
func (m *Message) StatusCode() int { return m.status }

// Reason returns the reason phrase of a response.
func (m *Message) Reason() []byte {
	if m.request {
		return nil
	}
	return m.reason.In(m.buf)
}

// Body returns the body (Content-Length bytes after the header section).
func (m *Message) Body() []byte { return m.body.In(m.buf) }

// BodySpan returns where the body is in the buffer.
func (m *Message) BodySpan() Span { return m.body }

// NumHeaders returns the number of header fields.
func (m *Message) NumHeaders() int { return m.nhdr }

// HeaderKind returns the kind of header i.
func (m *Message) HeaderKind(i int) HeaderKind {
	h := &m.hdrs[i]
	if h.kind == kindUnknown {
		h.kind = KindOf(h.name.In(m.buf))
	}
	return h.kind
}

// kindUnknown marks a header whose kind has not been looked up yet.
const kindUnknown HeaderKind = 255

// isKind reports whether header i is of kind k (not HdrOther), looking the
// kind up only when the name's length can match.
func (m *Message) isKind(i int, k HeaderKind) bool {
	h := &m.hdrs[i]
	if h.kind != kindUnknown {
		return h.kind == k
	}
	if n := h.name.End - h.name.Start; n != 1 && n != len(headerNames[k].name) {
		return false
	}
	// compared with k's names alone, not looked up among all kinds: the
	// kind is cached when it matches
	if !kindIs(h.name.In(m.buf), k) {
		return false
	}
	h.kind = k
	return true
}

// HeaderName returns the name of header i as written (maybe compact).
func (m *Message) HeaderName(i int) []byte { return m.hdrs[i].name.In(m.buf) }

// HeaderValue returns the value of header i without surrounding white
// space; a folded value keeps its line breaks.
func (m *Message) HeaderValue(i int) []byte { return m.hdrs[i].value.In(m.buf) }

// HeaderValueSpan returns where the value of header i is in the buffer.
func (m *Message) HeaderValueSpan(i int) Span { return m.hdrs[i].value }

// HeaderLineSpan returns the whole header field i including its line end.
func (m *Message) HeaderLineSpan(i int) Span { return m.hdrs[i].line }

// Index returns the index of the first header of kind k, or -1.
func (m *Message) Index(k HeaderKind) int {
	for i := 0; i < m.nhdr; i++ {
		if m.isKind(i, k) {
			return i
		}
	}
	return -1
}

// Get returns the value of the first header of kind k (k != HdrOther).
func (m *Message) Get(k HeaderKind) ([]byte, bool) {
	i := m.Index(k)
	if i < 0 {
		return nil, false
	}
	return m.HeaderValue(i), true
}

// GetName returns the value of the first header called name (full name,
// any case; the compact form of a known header also matches).
func (m *Message) GetName(name string) ([]byte, bool) {
	k := KindOf([]byte(name))
	for i := 0; i < m.nhdr; i++ {
		h := &m.hdrs[i]
		if (k != HdrOther && m.isKind(i, k)) || (k == HdrOther && equalFold(h.name.In(m.buf), name)) {
			return h.value.In(m.buf), true
		}
	}
	return nil, false
}

// CSeqMethod returns the method of the CSeq header.
func (m *Message) CSeqMethod() []byte {
	v, ok := m.Get(HdrCSeq)
	if !ok {
		return nil
	}
	i := 0
	for i < len(v) && isDigit(v[i]) {
		i++
	}
	for i < len(v) && isLWS(v[i]) {
		i++
	}
	return v[i:]
}

func indexLF(b []byte, from int) int {
	if from >= len(b) {
		return -1
	}
	i := bytes.IndexByte(b[from:], '\n')
	if i < 0 {
		return -1
	}
	return from + i
}

func indexByte(b []byte, from int, c byte) int {
	if from >= len(b) {
		return -1
	}
	i := bytes.IndexByte(b[from:], c)
	if i < 0 {
		return -1
	}
	return from + i
}

// lineEnd returns the end of a line's content given its LF position.
func lineEnd(b []byte, lf int) int {
	if lf > 0 && b[lf-1] == '\r' {
		return lf - 1
	}
	return lf
}

func skipWS(b []byte, i, end int) int {
	for i < end && isWS(b[i]) {
		i++
	}
	return i
}

func skipLWS(b []byte, i, end int) int {
	for i < end && isLWS(b[i]) {
		i++
	}
	return i
}

func trimRight(b []byte, start, end int) int {
	for end > start && isLWS(b[end-1]) {
		end--
	}
	return end
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && equalFold(b[:len(p)], p)
}

// parseUint parses a decimal number up to max; false when empty, not all
// digits or larger than max.
func parseUint(b []byte, max int) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > max {
			return 0, false
		}
	}
	return n, true
}
