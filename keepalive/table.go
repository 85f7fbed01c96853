package keepalive

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"unsafe"
)

// record is one contact of a Scheduler: 52 bytes, no pointers, so the
// garbage collector never scans the slab. Records link to each other by
// slab index; index 0 is a sentinel meaning "none".
type record struct {
	ip       [16]byte // IPv4 addresses as IPv4-mapped (flagIs4 tells them apart)
	port     uint16
	socket   uint16
	kind     uint8
	flags    uint8
	misses   uint8
	_        uint8
	interval uint32 // in ticks
	due      uint32 // tick of the next ping
	next     uint32 // wheel slot list; free list when not in use
	prev     uint32 // wheel slot list
	hnext    uint32 // hash bucket chain
	older    uint32 // age list: the contact Set before this one
	newer    uint32 // age list: the contact Set after this one
}

const (
	flagUsed     = 1 << iota // the record holds a contact
	flagIs4                  // the address is IPv4
	flagLinked               // the record is in a wheel slot
	flagAwaiting             // an OPTIONS ping is unanswered
	flagReported             // Unreachable was reported
)

// table is a slab of records with a chained hash index by address.
type table struct {
	recs    []record
	buckets []uint32 // heads of hash chains; len is a power of two
	free    uint32   // head of the free list
	n       int
	seed    uint64
	oldest  uint32 // age list ends: eviction takes the oldest
	newest  uint32
}

func (t *table) init(capacity int) {
	if capacity < 0 {
		capacity = 0
	}
	t.recs = make([]record, 1, capacity+1)
	nb := 64
	for nb < capacity {
		nb <<= 1
	}
	t.buckets = make([]uint32, nb)
	t.free = 0
	t.n = 0
	t.oldest, t.newest = 0, 0
	t.seed = rand.Uint64() | 1
}

// touch makes record i the newest of the age list (it is in it, or it is
// new when fresh is set).
func (t *table) touch(i uint32, fresh bool) {
	if !fresh {
		if t.newest == i {
			return
		}
		t.unage(i)
	}
	r := &t.recs[i]
	r.older, r.newer = t.newest, 0
	if t.newest != 0 {
		t.recs[t.newest].newer = i
	} else {
		t.oldest = i
	}
	t.newest = i
}

// unage takes record i out of the age list.
func (t *table) unage(i uint32) {
	r := &t.recs[i]
	if r.older != 0 {
		t.recs[r.older].newer = r.newer
	} else {
		t.oldest = r.newer
	}
	if r.newer != 0 {
		t.recs[r.newer].older = r.older
	} else {
		t.newest = r.older
	}
	r.older, r.newer = 0, 0
}

func key(a netip.AddrPort) (ip [16]byte, port uint16, is4 bool) {
	return a.Addr().As16(), a.Port(), a.Addr().Is4()
}

func (t *table) hash(ip *[16]byte, port uint16, is4 bool) uint64 {
	lo := binary.LittleEndian.Uint64(ip[:8])
	hi := binary.LittleEndian.Uint64(ip[8:])
	extra := uint64(port)
	if is4 {
		extra |= 1 << 16
	}
	h1, l1 := bits.Mul64(lo^t.seed, hi^0x9e3779b97f4a7c15)
	h2, l2 := bits.Mul64(h1^l1^extra, t.seed^0xbf58476d1ce4e5b9)
	return h2 ^ l2
}

func (t *table) bucket(ip *[16]byte, port uint16, is4 bool) *uint32 {
	return &t.buckets[t.hash(ip, port, is4)&uint64(len(t.buckets)-1)]
}

func (t *table) lookup(a netip.AddrPort) uint32 {
	ip, port, is4 := key(a)
	for i := *t.bucket(&ip, port, is4); i != 0; i = t.recs[i].hnext {
		r := &t.recs[i]
		if r.port == port && r.ip == ip && (r.flags&flagIs4 != 0) == is4 {
			return i
		}
	}
	return 0
}

// insert returns the record of a, creating it when absent.
func (t *table) insert(a netip.AddrPort) (i uint32, found bool) {
	if i = t.lookup(a); i != 0 {
		return i, true
	}
	if t.n >= len(t.buckets) {
		t.grow()
	}
	if t.free != 0 {
		i = t.free
		t.free = t.recs[i].next
		t.recs[i] = record{}
	} else {
		t.recs = append(t.recs, record{})
		i = uint32(len(t.recs) - 1)
	}
	ip, port, is4 := key(a)
	r := &t.recs[i]
	r.ip, r.port = ip, port
	r.flags = flagUsed
	if is4 {
		r.flags |= flagIs4
	}
	b := t.bucket(&ip, port, is4)
	r.hnext = *b
	*b = i
	t.n++
	t.touch(i, true)
	return i, false
}

// remove unhashes record i (already out of the wheel) and frees it.
func (t *table) remove(i uint32) {
	t.unage(i)
	r := &t.recs[i]
	b := t.bucket(&r.ip, r.port, r.flags&flagIs4 != 0)
	for p := b; *p != 0; p = &t.recs[*p].hnext {
		if *p == i {
			*p = r.hnext
			break
		}
	}
	*r = record{next: t.free}
	t.free = i
	t.n--
}

func (t *table) grow() {
	t.buckets = make([]uint32, 2*len(t.buckets))
	for i := 1; i < len(t.recs); i++ {
		r := &t.recs[i]
		if r.flags&flagUsed == 0 {
			continue
		}
		b := t.bucket(&r.ip, r.port, r.flags&flagIs4 != 0)
		r.hnext = *b
		*b = uint32(i)
	}
}

func (t *table) addr(i uint32) netip.AddrPort {
	r := &t.recs[i]
	var a netip.Addr
	if r.flags&flagIs4 != 0 {
		a = netip.AddrFrom4([4]byte(r.ip[12:]))
	} else {
		a = netip.AddrFrom16(r.ip)
	}
	return netip.AddrPortFrom(a, r.port)
}

const sizeofRecord = unsafe.Sizeof(record{})
