package sipmsg

import "math/bits"

// contactIter walks the Contact values of a message with their URIs. The
// first maxCachedContacts are parsed once per Parse and kept in the
// Message; more are parsed again on every walk.
type contactIter struct {
	m   *Message
	i   int // index of the next value
	w   contactWalker
	na  *NameAddr // the current value: in the cache, or in Message.extra
	u   *URI      // zero (SIP false) for "*"
	err error
}

// contactWalker parses Contact values in place, header by header, each
// value ending at its own comma (no separate splitting pass).
type contactWalker struct {
	hi  int // current header, -1 before the first
	pos int // next position in its value
}

// next parses the next Contact value; false at the end. A malformed value
// ends the walk of its header line (its end cannot be known) after being
// reported.
func (w *contactWalker) next(m *Message, na *NameAddr, u *URI, err *error) bool {
	b := m.buf
	for {
		if w.hi >= 0 && w.hi < m.nhdr {
			end := m.hdrs[w.hi].value.End
			for w.pos < end {
				w.pos = skipLWS(b, w.pos, end)
				if w.pos < end && b[w.pos] == ',' {
					w.pos++
					continue
				}
				if w.pos >= end {
					break
				}
				next, e := parseNameAddr(na, b, Span{w.pos, end}, true)
				if e != nil {
					*u = URI{}
					*err = e
					w.pos = end
					return true
				}
				w.pos = next
				if na.Star {
					*u = URI{}
					*err = nil
				} else {
					*err = parseURI(u, b, na.URI)
				}
				return true
			}
		}
		w.hi = m.nextMaybeContact(w.hi + 1)
		for w.hi < m.nhdr && !m.isKind(w.hi, HdrContact) {
			w.hi = m.nextMaybeContact(w.hi + 1)
		}
		if w.hi >= m.nhdr {
			return false
		}
		w.pos = m.hdrs[w.hi].value.Start
	}
}

func (m *Message) fillContacts() {
	if m.cstate != cacheNone {
		return
	}
	m.ncontact = 0
	w := contactWalker{hi: -1}
	for m.ncontact < maxCachedContacts {
		e := &m.contacts[m.ncontact]
		if !w.next(m, &e.na, &e.u, &e.err) {
			m.cstate = cacheOK
			return
		}
		m.ncontact++
	}
	m.cwalk = w
	m.cstate = cacheOverflow
}

func (m *Message) contactIter() contactIter {
	m.fillContacts()
	return contactIter{m: m}
}

func (it *contactIter) next() bool {
	m := it.m
	if it.i < m.ncontact {
		e := &m.contacts[it.i]
		it.na, it.u, it.err = &e.na, &e.u, e.err
		it.i++
		if it.i == m.ncontact {
			it.w = m.cwalk // continue after the cached values
		}
		return true
	}
	if m.cstate != cacheOverflow {
		return false
	}
	it.na, it.u = &m.extra.na, &m.extra.u
	return it.w.next(m, it.na, it.u, &it.err)
}

// nextMaybeContact returns the first header index >= i whose name may be
// Contact, or m.nhdr.
func (m *Message) nextMaybeContact(i int) int {
	for i < m.nhdr {
		w := m.maybeContact[i>>6] >> (i & 63)
		if w != 0 {
			i += bits.TrailingZeros64(w)
			if i > m.nhdr {
				return m.nhdr
			}
			return i
		}
		i = (i | 63) + 1
	}
	return m.nhdr
}
