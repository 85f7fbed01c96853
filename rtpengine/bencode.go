package rtpengine

import (
	"errors"
	"fmt"
	"strconv"
)

// Bencode is the encoding of the ng protocol: byte strings ("4:spam"),
// integers ("i42e"), lists ("l...e") and dictionaries ("d...e", keys are
// strings). This file holds a small codec for it: Append* functions that
// append to the caller's buffer, and a Decoder that indexes a message into a
// reusable node table without copying or allocating.

// Kind is the type of a decoded bencode value.
type Kind uint8

// The bencode kinds. Invalid is the zero Value's kind.
const (
	Invalid Kind = iota
	String
	Integer
	List
	Dict
)

// String is the kind's name in words: "string", "integer", "list", "dictionary".
func (k Kind) String() string {
	switch k {
	case String:
		return "string"
	case Integer:
		return "integer"
	case List:
		return "list"
	case Dict:
		return "dictionary"
	}
	return "invalid"
}

// Bounds of the decoder when its fields are zero.
const (
	DefaultMaxDepth = 16   // nesting of lists and dictionaries
	DefaultMaxNodes = 4096 // values in one message
)

// ErrBencode is wrapped by every decoding error; a *BencodeError says what
// was wrong and where.
var ErrBencode = errors.New("rtpengine: malformed bencode")

// BencodeError is a decoding error at byte offset Offset of the input.
type BencodeError struct {
	Offset int    // where in the input
	Reason string // what is wrong there
}

// Error gives the offset and the reason.
func (e *BencodeError) Error() string {
	return fmt.Sprintf("malformed bencode at byte %d: %s", e.Offset, e.Reason)
}

// Unwrap returns ErrBencode.
func (e *BencodeError) Unwrap() error { return ErrBencode }

// AppendString appends s as a bencode byte string.
func AppendString(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	return append(append(dst, ':'), s...)
}

// AppendBytes appends b as a bencode byte string.
func AppendBytes(dst, b []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	return append(append(dst, ':'), b...)
}

// AppendInt appends n as a bencode integer.
func AppendInt(dst []byte, n int64) []byte {
	dst = append(dst, 'i')
	return append(strconv.AppendInt(dst, n, 10), 'e')
}

// node is one decoded value: strings keep their content's span, integers
// their value, containers the index just past their last descendant.
type node struct {
	kind       Kind
	start, end int32 // the value's encoding
	content    int32 // where a string's content starts
	next       int32 // index of the node after this value and its descendants
	num        int64
}

// Decoder decodes bencode messages into a node table it reuses, so that
// decoding allocates nothing once the table has grown to the message size.
// The Values it returns point into the decoded input and into the Decoder:
// they are valid until the next Decode. A Decoder is not safe for
// concurrent use; the zero value is ready.
type Decoder struct {
	MaxDepth int // 0 means DefaultMaxDepth
	MaxNodes int // 0 means DefaultMaxNodes

	nodes []node
	buf   []byte
}

// Decode decodes b, which must hold exactly one value, and returns it.
func (d *Decoder) Decode(b []byte) (Value, error) {
	d.nodes = d.nodes[:0]
	d.buf = b
	maxDepth, maxNodes := d.MaxDepth, d.MaxNodes
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if maxNodes <= 0 {
		maxNodes = DefaultMaxNodes
	}
	if len(b) > 1<<30 {
		return Value{}, &BencodeError{0, "message larger than 1 GiB"}
	}
	p := parser{b: b, d: d, maxDepth: maxDepth, maxNodes: maxNodes}
	if err := p.value(0); err != nil {
		return Value{}, err
	}
	if p.i != len(b) {
		return Value{}, &BencodeError{p.i, "trailing data after the value"}
	}
	return Value{d: d, i: 0}, nil
}

type parser struct {
	b                  []byte
	i                  int
	d                  *Decoder
	maxDepth, maxNodes int
}

func (p *parser) fail(reason string) error { return &BencodeError{p.i, reason} }

func (p *parser) value(depth int) error {
	if p.i >= len(p.b) {
		return p.fail("unexpected end of input")
	}
	if len(p.d.nodes) >= p.maxNodes {
		return p.fail("more than " + strconv.Itoa(p.maxNodes) + " values")
	}
	idx := len(p.d.nodes)
	p.d.nodes = append(p.d.nodes, node{start: int32(p.i)})
	switch c := p.b[p.i]; {
	case c >= '0' && c <= '9':
		start, _, err := p.str()
		if err != nil {
			return err
		}
		n := &p.d.nodes[idx]
		n.kind, n.content = String, int32(start)
	case c == 'i':
		p.i++
		v, err := p.integer('e')
		if err != nil {
			return err
		}
		n := &p.d.nodes[idx]
		n.kind, n.num = Integer, v
	case c == 'l' || c == 'd':
		if depth >= p.maxDepth {
			return p.fail("nested deeper than " + strconv.Itoa(p.maxDepth))
		}
		p.i++
		kind := List
		if c == 'd' {
			kind = Dict
		}
		for {
			if p.i >= len(p.b) {
				return p.fail("unterminated " + kind.String())
			}
			if p.b[p.i] == 'e' {
				p.i++
				break
			}
			if kind == Dict && (p.b[p.i] < '0' || p.b[p.i] > '9') {
				return p.fail("dictionary key is not a string")
			}
			if err := p.value(depth + 1); err != nil {
				return err
			}
			if kind == Dict {
				if p.i < len(p.b) && p.b[p.i] == 'e' {
					return p.fail("dictionary key without a value")
				}
				if err := p.value(depth + 1); err != nil {
					return err
				}
			}
		}
		p.d.nodes[idx].kind = kind
	default:
		return p.fail(fmt.Sprintf("unexpected byte %q", c))
	}
	n := &p.d.nodes[idx]
	n.end, n.next = int32(p.i), int32(len(p.d.nodes))
	return nil
}

// str reads "<len>:<bytes>" and returns the content's span.
func (p *parser) str() (int, int, error) {
	n, err := p.integer(':')
	if err != nil {
		return 0, 0, err
	}
	if n < 0 {
		return 0, 0, p.fail("negative string length")
	}
	if n > int64(len(p.b)-p.i) {
		return 0, 0, p.fail("string length " + strconv.FormatInt(n, 10) + " past the end of input")
	}
	start := p.i
	p.i += int(n)
	return start, p.i, nil
}

// integer reads a decimal integer up to term (consumed).
func (p *parser) integer(term byte) (int64, error) {
	start := p.i
	neg := false
	if p.i < len(p.b) && p.b[p.i] == '-' && term == 'e' {
		neg = true
		p.i++
	}
	digits := p.i
	var v int64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		if v > (1<<63-1-9)/10 {
			return 0, p.fail("integer overflows 64 bits")
		}
		v = v*10 + int64(p.b[p.i]-'0')
		p.i++
	}
	switch {
	case p.i == digits:
		return 0, p.fail("missing digits")
	case p.i >= len(p.b):
		return 0, p.fail("unexpected end of input in a number")
	case p.b[p.i] != term:
		return 0, p.fail(fmt.Sprintf("unexpected byte %q in a number", p.b[p.i]))
	case p.b[digits] == '0' && p.i-digits > 1, neg && v == 0:
		p.i = start
		return 0, p.fail("number not in canonical form")
	}
	p.i++
	if neg {
		v = -v
	}
	return v, nil
}

// Value is one decoded bencode value, valid until its Decoder decodes again.
// The zero Value is Invalid: lookups on it return more Invalid values, so a
// chain of Get calls needs one check at the end.
type Value struct {
	d *Decoder
	i int32
}

func (v Value) n() *node {
	if v.d == nil {
		return nil
	}
	return &v.d.nodes[v.i]
}

// Kind returns the value's kind.
func (v Value) Kind() Kind {
	if n := v.n(); n != nil {
		return n.kind
	}
	return Invalid
}

// Bytes returns a string value's content (nil for other kinds). It points
// into the decoded input.
func (v Value) Bytes() []byte {
	if n := v.n(); n != nil && n.kind == String {
		return v.d.buf[n.content:n.end:n.end]
	}
	return nil
}

// Is reports whether v is a string equal to s.
func (v Value) Is(s string) bool { return v.Kind() == String && string(v.Bytes()) == s }

// Int returns an integer value, and false for other kinds.
func (v Value) Int() (int64, bool) {
	if n := v.n(); n != nil && n.kind == Integer {
		return n.num, true
	}
	return 0, false
}

// Raw returns the value's encoding as it appeared in the input.
func (v Value) Raw() []byte {
	if n := v.n(); n != nil {
		return v.d.buf[n.start:n.end:n.end]
	}
	return nil
}

// Len returns the number of elements of a list or entries of a dictionary.
func (v Value) Len() int {
	n := 0
	for it := v.Iter(); it.Next(); {
		n++
	}
	return n
}

// Get returns the value under key in a dictionary, or an Invalid value.
func (v Value) Get(key string) Value {
	if v.Kind() != Dict {
		return Value{}
	}
	for it := v.Iter(); it.Next(); {
		if string(it.Key().Bytes()) == key {
			return it.Value()
		}
	}
	return Value{}
}

// Iter iterates over a list's elements or a dictionary's entries.
func (v Value) Iter() Iter {
	n := v.n()
	if n == nil || (n.kind != List && n.kind != Dict) {
		return Iter{}
	}
	return Iter{d: v.d, dict: n.kind == Dict, cur: -1, first: v.i + 1, end: n.next}
}

// Iter walks a list or dictionary: call Next, then Value (and Key for a
// dictionary).
type Iter struct {
	d          *Decoder
	dict       bool
	cur        int32 // current element (the key, for a dictionary)
	first, end int32
}

// Next moves to the next element and reports whether there is one.
func (it *Iter) Next() bool {
	if it.d == nil {
		return false
	}
	if it.cur < 0 {
		it.cur = it.first
	} else {
		it.cur = it.d.nodes[it.cur].next
		if it.dict {
			it.cur = it.d.nodes[it.cur].next
		}
	}
	return it.cur < it.end
}

// Key returns the current dictionary key (Invalid in a list).
func (it Iter) Key() Value {
	if !it.dict || it.d == nil || it.cur < it.first || it.cur >= it.end {
		return Value{}
	}
	return Value{d: it.d, i: it.cur}
}

// Value returns the current element, or the value of the current entry.
func (it Iter) Value() Value {
	if it.d == nil || it.cur < it.first || it.cur >= it.end {
		return Value{}
	}
	if it.dict {
		return Value{d: it.d, i: it.d.nodes[it.cur].next}
	}
	return Value{d: it.d, i: it.cur}
}
