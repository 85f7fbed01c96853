package rtpengine

import (
	"testing"
)

// walk visits every value below v and checks that each one's encoding is
// a part of the input.
func walk(t *testing.T, v Value, depth int) int {
	if depth > DefaultMaxDepth+1 {
		t.Fatalf("walked deeper than the bound")
	}
	n := 1
	_ = v.Raw()
	for it := v.Iter(); it.Next(); {
		if v.Kind() == Dict && it.Key().Kind() != String {
			t.Fatalf("key of kind %s", it.Key().Kind())
		}
		n += walk(t, it.Value(), depth+1)
	}
	return n
}

// FuzzDecode: any input decodes or fails with a BencodeError, never
// panics; what decodes re-encodes to itself (Raw) and walks in bounds.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("d6:result2:ok3:sdp3:v=0e"))
	f.Add([]byte("li-1ei0e0:de"))
	var d Decoder
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := d.Decode(b)
		if err != nil {
			if _, ok := err.(*BencodeError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if string(v.Raw()) != string(b) {
			t.Fatalf("Raw %q != input %q", v.Raw(), b)
		}
		if n := walk(t, v, 0); n > DefaultMaxNodes {
			t.Fatalf("%d values, bound %d", n, DefaultMaxNodes)
		}
	})
}

// FuzzReply: a reply body never panics ParseReply and an accepted offer
// reply carries the SDP.
func FuzzReply(f *testing.F) {
	f.Add([]byte("d6:result2:ok3:sdp3:v=0e"))
	f.Add([]byte("d6:result5:error12:error-reason3:bade"))
	f.Add([]byte("d6:totalsd3:RTPd7:packetsi1eee6:result2:oke"))
	var d Decoder
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, cmd := range []Command{Offer, Query, Delete} {
			r, err := ParseReply(&d, cmd, b, nil)
			if err == nil && cmd == Offer && r.SDP == nil {
				t.Fatalf("offer accepted without sdp: %q", b)
			}
		}
	})
}
