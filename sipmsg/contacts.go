package sipmsg

// contactIter walks the Contact values of a message with their URIs,
// parsed once per Parse (up to maxCachedContacts; beyond that every walk
// parses again).
type contactIter struct {
	m      *Message
	cached bool
	i      int
	vi     ValueIter
	na     NameAddr
	u      URI // zero (SIP false) for "*"
	err    error
}

func (m *Message) fillContacts() {
	if m.cstate != cacheNone {
		return
	}
	m.ncontact = 0
	it := m.Values(HdrContact)
	for it.Next() {
		if m.ncontact == maxCachedContacts {
			m.cstate = cacheOverflow
			return
		}
		e := &m.contacts[m.ncontact]
		e.na, e.u, e.err = parseContact(m.buf, it.Span())
		m.ncontact++
	}
	m.cstate = cacheOK
}

func parseContact(b []byte, s Span) (NameAddr, URI, error) {
	na, err := ParseNameAddr(b, s)
	if err != nil || na.Star {
		return na, URI{}, err
	}
	u, err := ParseURI(b, na.URI)
	return na, u, err
}

func (m *Message) contactIter() contactIter {
	m.fillContacts()
	return contactIter{m: m, cached: m.cstate == cacheOK, vi: m.Values(HdrContact)}
}

func (it *contactIter) next() bool {
	if it.cached {
		if it.i >= it.m.ncontact {
			return false
		}
		e := &it.m.contacts[it.i]
		it.na, it.u, it.err = e.na, e.u, e.err
		it.i++
		return true
	}
	if !it.vi.Next() {
		return false
	}
	it.na, it.u, it.err = parseContact(it.m.buf, it.vi.Span())
	return true
}
