package sdp

import "testing"

// BenchmarkRewriteSIP is the helper sipmsg uses: a whole INVITE (baresip's,
// 886 bytes) with its body rewritten and Content-Length fixed.
func BenchmarkRewriteSIP(b *testing.B) {
	msg := readSIP(b, "baresip.sent.sip")
	opts := &Options{Public: labPublic, Origin: true, Ports: map[uint16]uint16{10008: 20000, 10009: 20005}}
	dst := make([]byte, 0, 2*len(msg))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := AppendRewriteSIP(dst[:0], msg, opts); err != nil {
			b.Fatal(err)
		}
	}
}
