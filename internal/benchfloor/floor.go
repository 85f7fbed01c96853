package benchfloor

import "bytes"

// Pair is one replacement: the first occurrence of Old after the previous
// pair's becomes New.
type Pair struct{ Old, New []byte }

// Replace appends src to dst with each pair's Old, searched in order from
// where the previous one ended, replaced by its New. A pair not found ends
// the replacing and the rest of src is copied as it is.
func Replace(dst, src []byte, pairs []Pair) []byte {
	p := 0
	for _, r := range pairs {
		i := bytes.Index(src[p:], r.Old)
		if i < 0 {
			break
		}
		dst = append(dst, src[p:p+i]...)
		dst = append(dst, r.New...)
		p += i + len(r.Old)
	}
	return append(dst, src[p:]...)
}

// Pairs builds pairs from old, new string couples.
func Pairs(oldNew ...string) []Pair {
	ps := make([]Pair, 0, len(oldNew)/2)
	for i := 0; i+1 < len(oldNew); i += 2 {
		ps = append(ps, Pair{[]byte(oldNew[i]), []byte(oldNew[i+1])})
	}
	return ps
}
