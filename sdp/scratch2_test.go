package sdp

import (
	"testing"
	"unsafe"
)

func TestScratchSizes(t *testing.T) {
	t.Logf("rewriter %d Result %d Finding %d walkState %d", unsafe.Sizeof(rewriter{}), unsafe.Sizeof(Result{}), unsafe.Sizeof(Finding{}), unsafe.Sizeof(walkState{}))
}

func BenchmarkScratchMin(b *testing.B) {
	in := []byte("v=0\r\ns=-\r\n")
	opts := &Options{Public: labPublic}
	dst := make([]byte, 0, 100)
	for i := 0; i < b.N; i++ {
		AppendRewrite(dst[:0], in, opts)
	}
}
