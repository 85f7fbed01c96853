package sdp

import "bytes"

// Walking a body line by line is a chain: each line's end, found by
// bytes.IndexByte, is where the search for the next one starts, so the
// walk runs at the latency of one IndexByte call per line rather than at
// its throughput. walk splits what is left of the body at a line start
// near its middle and runs a second chain from there, one step for each
// step of the first, storing the line ends it finds; the CPU overlaps the
// two. The lines still come out in body order: the first chain's up to
// the split, then the stored ones, then the rest is split again.

const (
	// walkAhead is how many line ends the second chain stores.
	walkAhead = 32
	// walkSplitMin is the shortest rest worth a second chain.
	walkSplitMin = 256
	// walkSpanMax bounds the first chain's share, so that the second
	// chain's walkAhead lines cover about as much of the body.
	walkSpanMax = 2048
)

// walk is the state of the two chains over a body b. The zero value
// starts at a split. The loop using it reads the next line's end e from
// p, the start of the line:
//
//	if p < lw.q: e is the first '\n' in b[p:lw.q] (or len(b)), and the
//	             caller steps the second chain: unless lw.pb >= len(b) or
//	             lw.n == walkAhead, it stores the end of the line at lw.pb
//	             in lw.ends[lw.n] (lw.n++) and moves lw.pb past it;
//	if lw.k < lw.n: e is lw.ends[lw.k] (lw.k++);
//	otherwise: lw.split(b, p) and read again.
type walk struct {
	q    int // end of the first chain's share; b[q-1] is '\n' unless q == len(b)
	pb   int // start of the second chain's next line
	k, n int // ends[k:n] are the second chain's line ends not yet read
	ends [walkAhead]int32
}

// split starts a new round at p, the start of a line: the first chain
// takes b[p:q], the second starts at q.
func (lw *walk) split(b []byte, p int) {
	lw.k, lw.n = 0, 0
	lw.q, lw.pb = len(b), len(b)
	if rest := len(b) - p; rest >= walkSplitMin {
		mid := p + min(rest/2, walkSpanMax)
		if j := bytes.IndexByte(b[mid:], '\n'); j >= 0 && mid+j+1 < len(b) {
			lw.q, lw.pb = mid+j+1, mid+j+1
		}
	}
}
