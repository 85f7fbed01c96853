package sipmsg

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestLineLayout pins the layout lines_amd64.s writes: a header is its kind,
// then the line, name and value spans; lineMarks the Contact words, then
// the Content-Length ones.
func TestLineLayout(t *testing.T) {
	t.Parallel()
	var h header
	require.Equal(t, uintptr(56), unsafe.Sizeof(h))
	require.Equal(t, uintptr(1), unsafe.Sizeof(h.kind))
	require.Equal(t, []uintptr{0, 8, 24, 40},
		[]uintptr{unsafe.Offsetof(h.kind), unsafe.Offsetof(h.line), unsafe.Offsetof(h.name), unsafe.Offsetof(h.value)})
	require.Equal(t, uintptr(16), unsafe.Sizeof(Span{}))
	var mk lineMarks
	require.Equal(t, []uintptr{0, 16}, []uintptr{unsafe.Offsetof(mk.contact), unsafe.Offsetof(mk.cl)})
	require.Equal(t, 96, MaxHeaders)
	require.Equal(t, HeaderKind(0xff), kindUnknown)
}

// sameScan checks that Parse with fastLines reads b exactly as the Go loop
// alone: the same error and the same message.
func sameScan(t testing.TB, b []byte) {
	var fast, slow Message
	ef, es := fast.parse(b, true), slow.parse(b, false)
	if fmt.Sprint(ef) != fmt.Sprint(es) {
		t.Fatalf("%q: error %v, Go loop %v", b, ef, es)
	}
	if fast.nhdr != slow.nhdr || !slices.Equal(fast.hdrs[:fast.nhdr], slow.hdrs[:slow.nhdr]) {
		t.Fatalf("%q: headers\n%v\nGo loop\n%v", b, fast.hdrs[:fast.nhdr], slow.hdrs[:slow.nhdr])
	}
	type state struct {
		buf                                  []byte
		request                              bool
		method, ruri, version, reason, start Span
		status, hdrEnd, clIdx, trailing      int
		body                                 Span
		maybeContact                         [2]uint64
	}
	of := func(m *Message) state {
		return state{m.buf, m.request, m.method, m.ruri, m.version, m.reason, m.start,
			m.status, m.hdrEnd, m.clIdx, m.trailing, m.body, m.maybeContact}
	}
	if f, s := of(&fast), of(&slow); fmt.Sprint(f) != fmt.Sprint(s) || len(f.buf) != len(s.buf) {
		t.Fatalf("%q: message\n%+v\nGo loop\n%+v", b, f, s)
	}
}

// TestFastLines compares the two ways of reading header lines on every
// prefix of the test messages (fastLines stops at different lines near the
// end of b) and on lines of every form it leaves to the Go loop.
func TestFastLines(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/*/*.sip")
	rfc, _ := filepath.Glob("testdata/rfc4475/*.dat")
	var msgs [][]byte
	for _, name := range append(files, rfc...) {
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		msgs = append(msgs, b)
	}
	head := "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
	long := strings.Repeat("x", 70)
	for _, line := range []string{
		"Contact: <sip:a@192.0.2.1>", "m: <sip:a@192.0.2.1>", "l: 0", "Content-Length: 0", "content-length:0",
		"CONTACT:  <sip:a@192.0.2.1>", "Contacts: x", "Xontact: x", "X-Header-Sixteen: v", "X-Header-Fifteen: v",
		"Name :v", "Name\t: v", "Name: v ", "Name: v\t", "Name:", "Name: ", "Name:  v", "Name:\tv", "N.a!me: v",
		"Name2-3: v", ": v", "-: v", "a: " + long, "Long: " + long + long, "Name: v\r\n folded", "Name: v\r\n\tfolded\r\n more",
		"Name: v\rw", "Name: v\n", "\xc3\xa9: v", "[: v", "Max-Forwards: 70", "Name: v\r\nl: 5\r\nContent-Length: 5",
	} {
		for _, body := range []string{"", "12345", long} {
			msg := head + line + "\r\nCall-ID: 1@x\r\nCSeq: 1 INVITE\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body
			msgs = append(msgs, []byte(msg), []byte(strings.ReplaceAll(msg, "\r\n", "\n")))
		}
	}
	// the header limit, reached by fastLines and by the Go loop
	for _, n := range []int{MaxHeaders - 1, MaxHeaders, MaxHeaders + 1} {
		var b bytes.Buffer
		b.WriteString("OPTIONS sip:x SIP/2.0\r\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "X-H: value %d\r\n", i)
		}
		b.WriteString("Content-Length: 0\r\n\r\n" + long)
		msgs = append(msgs, b.Bytes())
	}
	for _, msg := range msgs {
		for end := 0; end <= len(msg); end++ {
			sameScan(t, msg[:end])
		}
	}
}
