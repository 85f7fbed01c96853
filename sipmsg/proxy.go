package sipmsg

// AppendRemoveTopValue appends m without the first value of the headers of
// kind k (a proxy removes its own Via from a response, RFC 3261 §18.1.2,
// or its own Route from a loose-routed request, §16.12). The whole header
// line goes when it held only that value. removed is false (and m copied
// unchanged) when there is no such header.
func AppendRemoveTopValue(dst []byte, m *Message, k HeaderKind) (out []byte, removed bool, err error) {
	if m.buf == nil {
		return dst, false, perr(0, "rewrite", ErrMalformed)
	}
	e := &m.ed
	e.reset(m.buf)
	it := m.Values(k)
	if it.Next() {
		removed = true
		h := &m.hdrs[it.Header()]
		v := it.Span()
		if _, next := splitValue(m.buf, v.Start, h.value.End); next >= h.value.End && v.Start == skipLWS(m.buf, h.value.Start, h.value.End) {
			e.add(h.line.Start, h.line.End, nil) // the only value: drop the line
		} else {
			// drop "value," and the white space after the comma
			_, next := splitValue(m.buf, v.Start, h.value.End)
			e.add(v.Start, skipLWS(m.buf, next, h.value.End), nil)
		}
	}
	out, err = e.apply(dst, m.body, nil, Span{-1, -1})
	return out, removed, err
}

// AppendInsertTop appends m with "Name: value" inserted before the first
// header of kind k (after the last Via when there is none), unless the
// first value of kind k already equals value. A stateless proxy adds its
// Via this way (k = HdrVia, value "SIP/2.0/UDP host:port;branch=...").
func AppendInsertTop(dst []byte, m *Message, k HeaderKind, value []byte) ([]byte, error) {
	if m.buf == nil || k == HdrOther {
		return dst, perr(0, "rewrite", ErrMalformed)
	}
	e := &m.ed
	e.reset(m.buf)
	m.insertTop(e, k, headerNames[k].name+": ", value)
	return e.apply(dst, m.body, nil, Span{-1, -1})
}
