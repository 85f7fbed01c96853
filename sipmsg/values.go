package sipmsg

import "bytes"

// ValueIter walks the comma-separated values of every header of one kind,
// in message order (RFC 3261 §7.3.1: several header lines of a kind are one
// comma-separated list). Commas inside quoted strings and <...> do not split.
//
//	it := m.Values(sipmsg.HdrVia)
//	for it.Next() {
//		v := it.Span() // one via-parm
//	}
type ValueIter struct {
	m    *Message
	kind HeaderKind
	hi   int // current header index
	pos  int // next scan position in the current header value
	cur  Span
}

// Values returns an iterator over the values of headers of kind k.
func (m *Message) Values(k HeaderKind) ValueIter {
	return ValueIter{m: m, kind: k, hi: -1}
}

// Next advances to the next value and reports whether there is one.
// Empty list elements are skipped.
func (it *ValueIter) Next() bool {
	m := it.m
	for {
		if it.hi >= 0 && it.hi < m.nhdr {
			v := m.hdrs[it.hi].value
			for it.pos < v.End {
				s, next := splitValue(m.buf, it.pos, v.End)
				it.pos = next
				if s.Len() > 0 {
					it.cur = s
					return true
				}
			}
		}
		it.hi++
		for it.hi < m.nhdr && !m.isKind(it.hi, it.kind) {
			it.hi++
		}
		if it.hi >= m.nhdr {
			return false
		}
		it.pos = m.hdrs[it.hi].value.Start
	}
}

// Span returns where the current value is (trimmed of white space).
func (it *ValueIter) Span() Span { return it.cur }

// Bytes returns the current value.
func (it *ValueIter) Bytes() []byte { return it.cur.In(it.m.buf) }

// Header returns the index of the header holding the current value.
func (it *ValueIter) Header() int { return it.hi }

// splitValue returns the trimmed list element starting at pos and the
// position after its comma.
func splitValue(b []byte, pos, end int) (Span, int) {
	start := skipLWS(b, pos, end)
	i := start
	angle := false
	for i < end {
		c := b[i]
		if !splitSpecial[c] {
			i++
			continue
		}
		switch c {
		case '"':
			i = skipQuoted(b, i, end)
			continue
		case '<':
			angle = true
		case '>':
			angle = false
		case ',':
			if !angle {
				return Span{start, trimRight(b, start, i)}, i + 1
			}
		}
		i++
	}
	return Span{start, trimRight(b, start, end)}, end
}

var splitSpecial = [256]bool{'"': true, '<': true, '>': true, ',': true}

// skipQuoted returns the position after the quoted string starting at the
// '"' at i (or end when it is not closed).
func skipQuoted(b []byte, i, end int) int {
	q, _ := closeQuote(b, i, end)
	return q
}

// TopVia returns where the first Via value is.
func (m *Message) TopVia() (Span, bool) {
	it := m.Values(HdrVia)
	if !it.Next() {
		return Span{}, false
	}
	return it.Span(), true
}

// Param is one ;name[=value] parameter.
type Param struct {
	Name     Span // the name as written, case kept
	Value    Span // without quotes for a quoted value
	HasValue bool // an '=' followed the name (Value may be empty only when quoted)
	All      Span // from the ';' to the end of the value
}

// set copies q into p field by field: a whole-struct copy moves 16 bytes
// at a time and stalls on the 8-byte stores readParam just made to q.
func (p *Param) set(q *Param) {
	p.Name, p.Value, p.HasValue, p.All = q.Name, q.Value, q.HasValue, q.All
}

// nextParam reads the parameter starting at the ';' at i. It returns the
// parameter and the position after it; ok is false at the end of the list
// (a position holding no ';').
func nextParam(b []byte, i, end int) (p Param, next int, ok bool) {
	ok = readParam(&p, b, &i, end)
	return p, i, ok
}

// readParam is nextParam filling *p and advancing *pos, without copying a
// Param around.
func readParam(p *Param, b []byte, pos *int, end int) bool {
	i := *pos
	if i < end && b[i] != ';' { // white space before the ';' is rare
		i = skipLWS(b, i, end)
		*pos = i
	}
	if i >= end || b[i] != ';' {
		return false
	}
	p.HasValue = false
	p.Value = Span{}
	p.All.Start = i
	i++
	if i < end && isLWS(b[i]) {
		i = skipLWS(b, i, end)
	}
	ns := i
	i = runEnd(&tokenSet, b, i, end)
	p.Name = Span{ns, i}
	p.All.End = i
	j := skipLWS(b, i, end)
	if j < end && b[j] == '=' {
		j = skipLWS(b, j+1, end)
		p.HasValue = true
		switch {
		case j < end && b[j] == '"':
			q, closed := closeQuote(b, j, end)
			if !closed {
				*pos = j
				return false
			}
			p.Value = Span{j + 1, q - 1}
			i = q
		default:
			k := j
			k = runEnd(&paramSet, b, k, end)
			p.Value = Span{j, k}
			i = k
		}
		p.All.End = i
	}
	*pos = i
	return true
}

// findParam looks for parameter name in the list starting at i.
func findParam(b []byte, i, end int, name string) (Param, bool) {
	for {
		p, next, ok := nextParam(b, i, end)
		if !ok {
			return Param{}, false
		}
		if equalFold(p.Name.In(b), name) {
			return p, true
		}
		if next <= i {
			return Param{}, false
		}
		i = next
	}
}

// paramChar holds the characters that may appear in an unquoted parameter
// value: token characters plus the URI paramchar extras and IPv6 reference
// characters (RFC 3261 §25.1).
var paramChar = func() (t [256]bool) {
	t = tokenTable
	for _, c := range ":[]/&$" {
		t[c] = true
	}
	return t
}()

// validParams reports whether b[i:end] is a well-formed parameter list
// (each one ";name" or ";name=value" with a non-empty name).
func validParams(b []byte, i, end int) bool {
	_, _, ok := scanParams(b, i, end, false)
	return ok
}

// closeQuote returns the position after the quoted string starting at the
// '"' at i and whether it is closed before end.
func closeQuote(b []byte, i, end int) (int, bool) {
	i++
	for i < end {
		q := bytes.IndexByte(b[i:end], '"')
		if q < 0 {
			return end, false
		}
		q += i
		// a quote preceded by an odd number of backslashes is escaped
		n := 0
		for k := q - 1; k >= i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, true
		}
		i = q + 1
	}
	return end, false
}
