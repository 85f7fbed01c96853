package linefeed

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// refMask is Mask byte by byte.
func refMask(b []byte, i int) uint64 {
	var m uint64
	for k := 0; k < 64 && i+k < len(b); k++ {
		if b[i+k] == '\n' {
			m |= 1 << k
		}
	}
	return m
}

// refEnds lists the line feeds of b, then len(b).
func refEnds(b []byte) []int {
	var out []int
	for i, c := range b {
		if c == '\n' {
			out = append(out, i)
		}
	}
	return append(out, len(b))
}

func checkAll(t *testing.T, b []byte) {
	t.Helper()
	for i := 0; i <= len(b); i++ {
		require.Equal(t, refMask(b, i), Mask(b, i), "Mask at %d of %q", i, b)
	}
	var it Iter
	it.Reset(b)
	var got []int
	for {
		e := it.End()
		got = append(got, e)
		if e == len(b) {
			break
		}
	}
	require.Equal(t, refEnds(b), got, "Iter over %q", b)
	got = got[:0]
	var m [BlockRun]uint64
	for blk := 0; blk < len(b); blk += 64 * BlockRun {
		n := Blocks(&m, b, blk)
		require.Equal(t, min(BlockRun, (len(b)-blk+63)/64), n, "Blocks at %d of %q", blk, b)
		for k, bm := range m[:n] {
			require.Equal(t, refMask(b, blk+64*k), bm, "Blocks at %d, block %d of %q", blk, k, b)
			for ; bm != 0; bm &= bm - 1 {
				got = append(got, blk+64*k+bits.TrailingZeros64(bm))
			}
		}
	}
	require.Equal(t, refEnds(b), append(got, len(b)), "Blocks over %q", b)
	require.Equal(t, len(b), it.End(), "Next after the end")
	for i := 0; i <= len(b); i++ {
		it.Reset(b)
		it.Skip(i)
		want := len(b)
		if j := bytes.IndexByte(b[i:], '\n'); j >= 0 {
			want = i + j
		}
		require.Equal(t, want, it.End(), "Skip(%d) of %q", i, b)
	}
}

func TestMaskAndIter(t *testing.T) {
	t.Parallel()
	tests := []string{
		"", "\n", "a", "a\r\nb\r\n", "\n\n\n",
		string(bytes.Repeat([]byte("x\n"), 40)),
		string(bytes.Repeat([]byte("a=rtpmap:0 PCMU/8000\r\n"), 60)) + "a=x", // more than a run of blocks
		string(bytes.Repeat([]byte{'\n'}, 64)) + "tail",
		string(bytes.Repeat([]byte{'a'}, 63)) + "\n" + string(bytes.Repeat([]byte{'b'}, 64)) + "\n",
		"\x0a\x8a\x0b\x09\xff\x00\x0a", // near misses of 0x0a
	}
	for _, s := range tests {
		checkAll(t, []byte(s))
	}
}

// TestSWARMask checks the Go mask of other architectures on every byte
// value in every position, and on random words.
func TestSWARMask(t *testing.T) {
	t.Parallel()
	ref := func(x uint64) uint64 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], x)
		return refMask(b[:], 0)
	}
	for pos := 0; pos < 8; pos++ {
		for v := 0; v < 256; v++ {
			for _, fill := range []uint64{0, 0x0a0a0a0a0a0a0a0a, 0xffffffffffffffff, 0x0b0b0b0b0b0b0b0b} {
				x := fill&^(0xff<<(8*pos)) | uint64(v)<<(8*pos)
				require.Equal(t, ref(x), swarMask(x), "%#x", x)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		x := r.Uint64()
		// sprinkle line feeds
		for k := 0; k < 8; k++ {
			if r.IntN(3) == 0 {
				x = x&^(0xff<<(8*k)) | 0x0a<<(8*k)
			}
		}
		require.Equal(t, ref(x), swarMask(x), "%#x", x)
	}
}

func FuzzIter(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n"))
	f.Add([]byte("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n"))
	f.Add(bytes.Repeat([]byte("\n"), 130))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAll(t, b)
	})
}

func BenchmarkIter(b *testing.B) {
	body := bytes.Repeat([]byte("a=rtpmap:111 opus/48000/2\r\n"), 100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var it Iter
	for i := 0; i < b.N; i++ {
		it.Reset(body)
		for it.End() < len(body) {
		}
	}
}
