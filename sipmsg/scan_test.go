package sipmsg

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const inviteV6 = "INVITE sip:bob@[2001:db8::2]:5060;transport=udp SIP/2.0\r\n" +
	"v: SIP/2.0/UDP [fd00::10]:5062;branch=z9hG4bK77;rport\r\n" +
	"Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp1, SIP/2.0/UDP 198.51.100.9:5080;branch=z9hG4bKp2\r\n" +
	"f: \"Alice, A. <x>\" <sip:alice@example.com>;tag=1\r\n" +
	"t: <sip:bob@example.com>\r\n" +
	"i: abc@fd00::10\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"m: \"Al,ice\" <sip:alice@[fd00::10]:5062;ob>;expires=60, <sip:alice@192.168.1.10>\r\n" +
	"Subject: a folded\r\n  subject line\r\n" +
	"k: timer\r\n" +
	"c: application/sdp\r\n" +
	"l: 4\r\n" +
	"\r\n" +
	"v=0\r\n"

func TestParse(t *testing.T) {
	t.Parallel()
	var m Message
	require.NoError(t, m.Parse([]byte(inviteV6)))
	require.True(t, m.IsRequest())
	require.Equal(t, "INVITE", string(m.Method()))
	require.True(t, m.IsMethod("INVITE"))
	require.Equal(t, "sip:bob@[2001:db8::2]:5060;transport=udp", string(m.RequestURI()))
	require.Equal(t, 11, m.NumHeaders())
	require.Equal(t, HdrVia, m.HeaderKind(0))
	require.Equal(t, "v", string(m.HeaderName(0)))
	require.Equal(t, "v=0\r", string(m.Body()))
	require.Equal(t, len(inviteV6)-1, m.Len())

	cid, ok := m.Get(HdrCallID)
	require.True(t, ok)
	require.Equal(t, "abc@fd00::10", string(cid))
	subj, ok := m.GetName("subject")
	require.True(t, ok)
	require.Equal(t, "a folded\r\n  subject line", string(subj))
	ct, ok := m.GetName("Content-Type")
	require.True(t, ok)
	require.Equal(t, "application/sdp", string(ct))
	_, ok = m.GetName("X-None")
	require.False(t, ok)
	require.Equal(t, "INVITE", string(m.CSeqMethod()))

	var vias []string
	it := m.Values(HdrVia)
	for it.Next() {
		vias = append(vias, string(it.Bytes()))
	}
	require.Equal(t, []string{
		"SIP/2.0/UDP [fd00::10]:5062;branch=z9hG4bK77;rport",
		"SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp1",
		"SIP/2.0/UDP 198.51.100.9:5080;branch=z9hG4bKp2",
	}, vias)

	v, err := m.ParseTopVia()
	require.NoError(t, err)
	b := m.Bytes()
	require.Equal(t, "UDP", string(v.Transport.In(b)))
	require.Equal(t, "[fd00::10]:5062", string(v.SentBy.In(b)))
	a, ok := v.HostAddr(b)
	require.True(t, ok)
	require.Equal(t, netip.MustParseAddr("fd00::10"), a)
	require.Equal(t, 5062, v.Port)
	require.True(t, v.HasRport)
	require.False(t, v.Rport.HasValue)
	require.Equal(t, "z9hG4bK77", string(v.Branch.Value.In(b)))

	var contacts []string
	it = m.Values(HdrContact)
	for it.Next() {
		na, err := ParseNameAddr(b, it.Span())
		require.NoError(t, err)
		u, err := ParseURI(b, na.URI)
		require.NoError(t, err)
		contacts = append(contacts, string(na.Display.In(b))+"|"+string(u.User.In(b))+"|"+string(u.Host.In(b))+"|"+string(u.Params.In(b))+"|"+string(na.Params.In(b)))
	}
	require.Equal(t, []string{`"Al,ice"|alice|fd00::10|;ob|;expires=60`, "|alice|192.168.1.10||"}, contacts)

	f, ok := m.Get(HdrFrom)
	require.True(t, ok)
	require.Equal(t, `"Alice, A. <x>" <sip:alice@example.com>;tag=1`, string(f))
}

func TestParseResponse(t *testing.T) {
	t.Parallel()
	var m Message
	msg := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1;rport=5070;received=203.0.113.1\r\nContent-Length: 0\r\n\r\n"
	require.NoError(t, m.Parse([]byte(msg)))
	require.False(t, m.IsRequest())
	require.Equal(t, 200, m.StatusCode())
	require.Equal(t, "OK", string(m.Reason()))
	require.Nil(t, m.Method())
	require.Nil(t, m.RequestURI())
	pub, ok := m.PublicAddr()
	require.True(t, ok)
	require.Equal(t, netip.MustParseAddrPort("203.0.113.1:5070"), pub)
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrIncomplete},
		{"no line end", "INVITE sip:a@b SIP/2.0", ErrIncomplete},
		{"binary", "\x00\x01\x02\n", ErrMalformed},
		{"no headers end", "INVITE sip:a@b SIP/2.0\r\nVia: x\r\n", ErrIncomplete},
		{"bad version", "INVITE sip:a@b HTTP/1.1\r\n\r\n", ErrMalformed},
		{"no uri", "INVITE  SIP/2.0\r\n\r\n", ErrMalformed},
		{"bad status", "SIP/2.0 2x0 OK\r\n\r\n", ErrMalformed},
		{"status too small", "SIP/2.0 099 OK\r\n\r\n", ErrMalformed},
		{"fold first", "INVITE sip:a@b SIP/2.0\r\n x\r\n\r\n", ErrMalformed},
		{"no colon", "INVITE sip:a@b SIP/2.0\r\nVia x\r\n\r\n", ErrMalformed},
		{"bad name", "INVITE sip:a@b SIP/2.0\r\n:x\r\n\r\n", ErrMalformed},
		{"bad CL", "INVITE sip:a@b SIP/2.0\r\nl: x\r\n\r\n", ErrMalformed},
		{"CL too big", "INVITE sip:a@b SIP/2.0\r\nl: 10\r\n\r\nabc", ErrIncomplete},
		{"CL conflict", "INVITE sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nabc", ErrMalformed},
		{"CR alone", "INVITE sip:a@b SIP/2.0\r\n\rx", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			err := m.Parse([]byte(tt.in))
			require.ErrorIs(t, err, tt.want)
			var pe *ParseError
			require.True(t, errors.As(err, &pe))
			require.NotEmpty(t, pe.Error())
		})
	}
}

func TestParseBounds(t *testing.T) {
	t.Parallel()
	var m Message
	big := make([]byte, MaxMessageSize+1)
	require.ErrorIs(t, m.Parse(big), ErrTooLarge)
	msg := []byte("OPTIONS sip:a@b SIP/2.0\r\n")
	for i := 0; i <= MaxHeaders; i++ {
		msg = append(msg, "X-A: 1\r\n"...)
	}
	msg = append(msg, "\r\n"...)
	require.ErrorIs(t, m.Parse(msg), ErrTooManyHeaders)
}

func TestParseLF(t *testing.T) {
	t.Parallel()
	var m Message
	require.NoError(t, m.Parse([]byte("OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1\nl: 0\n\n")))
	v, err := m.ParseTopVia()
	require.NoError(t, err)
	require.Equal(t, 5060, v.PortOrDefault(m.Bytes()))
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	for k := HdrVia; k < numHeaderKinds; k++ {
		require.Equal(t, k, KindOf([]byte(k.String())), k.String())
		if c := k.Compact(); c != 0 {
			require.Equal(t, k, KindOf([]byte{c}))
			require.Equal(t, k, KindOf([]byte{c - 'a' + 'A'}))
		}
	}
	require.Equal(t, HdrCallID, KindOf([]byte("call-id")))
	require.Equal(t, HdrOther, KindOf([]byte("X-Foo")))
	require.Equal(t, HdrOther, KindOf([]byte("1")))
}

// TestGoldenParse scans every captured message: sipp, kamailio and the
// kernel SIP ALG as seen on the LAN and the WAN side of the lab.
func TestGoldenParse(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/lab/*.sip")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var m Message
		require.NoError(t, m.Parse(b), f)
		require.Equal(t, len(b), m.Len(), f)
		_, err = m.ParseTopVia()
		require.NoError(t, err, f)
	}
}

func TestParseAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	b := []byte(inviteV6)
	var m Message
	n := testing.AllocsPerRun(100, func() {
		_ = m.Parse(b)
		_, _ = m.ParseTopVia()
		it := m.Values(HdrContact)
		for it.Next() {
			_, _ = contactURI(b, it.Span())
		}
	})
	require.Zero(t, n)
}

func TestParseViaForms(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, transport, host string }{
		{"SIP/2.0/UDP 10.0.0.1", "UDP", "10.0.0.1"},
		{"sip/2.0/tcp 10.0.0.1:5070;branch=z9hG4bK1", "tcp", "10.0.0.1"},
		{"SIP / 2.0 / TLS [2001:db8::1]:5061", "TLS", "2001:db8::1"},
		{"SIP/2.0/WSS host.example.com ;rport", "WSS", "host.example.com"},
	} {
		b := []byte(tt.in)
		v, err := ParseVia(b, Span{0, len(b)})
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.transport, string(v.Transport.In(b)))
		require.Equal(t, tt.host, string(v.Host.In(b)))
	}
	for _, bad := range []string{"SIP\x0f2.0/UDP 10.0.0.1", "SIP/2.0/", "SIP/2.0/UDP", "SIP/2.0/UDP 10.0.0.1:99999", "SIP/2.0/UDP 10.0.0.1;=x", "SIP/2.0/UDP [::1"} {
		b := []byte(bad)
		_, err := ParseVia(b, Span{0, len(b)})
		require.ErrorIs(t, err, ErrMalformed, "%q", bad)
	}
}

// TestRunEnd holds runEnd's eight-byte steps to a byte loop: every byte
// value at every offset of runs up to 20 bytes, for each set it is used
// with, and with end inside the run, at its stop byte and past the end of
// the buffer.
func TestRunEnd(t *testing.T) {
	t.Parallel()
	for _, set := range []struct {
		name string
		t    *byteSet
		b    *[256]bool
	}{{"token", &tokenSet, &tokenTable}, {"host", &hostSet, &hostChar}, {"param", &paramSet, &paramChar}} {
		want := func(b []byte, i, end int) int {
			end = min(end, len(b))
			if i >= end {
				return i
			}
			for i < end && set.b[b[i]] {
				i++
			}
			return i
		}
		for n := 0; n <= 20; n++ {
			for stop := 0; stop < 256; stop++ {
				b := make([]byte, n+1)
				for k := range n {
					b[k] = 'a'
				}
				b[n] = byte(stop)
				for start := 0; start <= n; start++ {
					for _, end := range []int{start - 1, start, start + 1, start + 3, n - 1, n, n + 1, n + 9} { // inside the run too: the words read past end
						if w, got := want(b, start, end), runEnd(set.t, b, start, end); got != w {
							t.Fatalf("%s: run of %d, stop byte %#x, from %d to %d: %d, want %d",
								set.name, n, stop, start, end, got, w)
						}
					}
				}
			}
		}
	}
}

// TestTokenEnd holds tokenEnd to runEnd over the token set: every byte
// value at every offset, after runs of letters, digits and '-'.
func TestTokenEnd(t *testing.T) {
	t.Parallel()
	for _, fill := range []byte{'a', 'Z', '-', '7', '.'} {
		for n := 0; n <= 20; n++ {
			for stop := 0; stop < 256; stop++ {
				b := make([]byte, n+1, n+16)
				for k := range n {
					b[k] = fill
				}
				b[n] = byte(stop)
				for start := 0; start <= n; start++ {
					for _, end := range []int{start - 1, start, start + 1, start + 3, n - 1, n, n + 1, n + 9} { // inside the run too: the words read past end
						if w, got := runEnd(&tokenSet, b, start, end), tokenEnd(b, start, end); got != w {
							t.Fatalf("run of %d %q, stop byte %#x, from %d to %d: %d, want %d",
								n, fill, stop, start, end, got, w)
						}
					}
				}
			}
		}
	}
	for c := 0; c < 256; c++ {
		want := uint64(0)
		if 'a' <= c|0x20 && c|0x20 <= 'z' && c < 0x80 || c == '-' {
			want = 0x80
		}
		for k := 0; k < 8; k++ {
			x := uint64('a'*lowBits)&^(0xff<<(8*k)) | uint64(c)<<(8*k)
			if got := letterOrDash(x) >> (8 * k) & 0xff; got != want {
				t.Fatalf("letterOrDash byte %#x at %d: %#x, want %#x", c, k, got, want)
			}
		}
	}
}

// TestEqualLowerName holds the word compares to a byte loop for every
// known name against itself in both cases and with each byte changed.
func TestEqualLowerName(t *testing.T) {
	t.Parallel()
	want := func(b []byte, n string) bool {
		if len(b) != len(n) {
			return false
		}
		for i := range b {
			if b[i]|0x20 != n[i] {
				return false
			}
		}
		return true
	}
	names := []string{"", "received", "rport", "branch", "transport", "alias", "maddr", "lr", "ob"}
	for _, h := range headerNames[1:] {
		names = append(names, strings.ToLower(h.name))
	}
	for _, n := range names {
		for _, b := range [][]byte{[]byte(n), []byte(strings.ToUpper(n)), []byte(n + "x"), []byte(n)[:max(len(n)-1, 0)]} {
			require.Equal(t, want(b, n), equalLowerName(b, n), "%q %q", b, n)
			for i := range b {
				for _, c := range []byte{0, 'x', '-', '.', b[i] ^ 0x20, b[i] + 1} {
					x := append([]byte(nil), b...)
					x[i] = c
					require.Equal(t, want(x, n), equalLowerName(x, n), "%q %q", x, n)
				}
			}
		}
	}
}

// TestParseURIScheme covers the word compare of the usual "sip:" scheme
// beside the byte loop that reads the others.
func TestParseURIScheme(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		uri    string
		sip    bool
		scheme string
		host   string
		err    bool
	}{
		{"sip:a@192.0.2.1:5060", true, "sip", "192.0.2.1", false},
		{"SIP:a@h", true, "SIP", "h", false},
		{"sIp:h;lr", true, "sIp", "h", false},
		{"sips:h", true, "sips", "h", false},
		{"sip:", false, "", "", true},
		{"sip\x1ah", false, "", "", true},
		{"sip\x1a:h", false, "sip\x1a", "", false},
		{"tel:+1", false, "tel", "", false},
		{"si:h", false, "si", "", false},
		{":h", false, "", "", true},
	} {
		b := []byte("<" + c.uri + ">")
		u, err := ParseURI(b, Span{1, len(b) - 1})
		if c.err {
			require.Error(t, err, c.uri)
			continue
		}
		require.NoError(t, err, c.uri)
		require.Equal(t, c.sip, u.SIP, c.uri)
		require.Equal(t, c.scheme, string(u.Scheme.In(b)), c.uri)
		require.Equal(t, c.host, string(u.Host.In(b)), c.uri)
	}
}

// TestKindIs holds kindIs to KindOf for every known name in both cases,
// its compact form, and each kind asked about every other's name.
func TestKindIs(t *testing.T) {
	t.Parallel()
	var names []string
	for _, h := range headerNames[1:] {
		names = append(names, h.name, strings.ToUpper(h.name), strings.ToLower(h.name))
		if h.compact != 0 {
			names = append(names, string(h.compact), strings.ToUpper(string(h.compact)))
		}
	}
	names = append(names, "X", "Contacts", "Vias", "", "1", "Content-Lengthx")
	for _, n := range names {
		for k := HdrVia; k < numHeaderKinds; k++ {
			require.Equal(t, KindOf([]byte(n)) == k, kindIs([]byte(n), k), "%q %v", n, k)
		}
	}
}

func TestViaSentByAddr(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		via  string
		want string // "" when not an address
	}{
		{"SIP/2.0/UDP 192.0.2.1:5072;branch=z9hG4bK1", "192.0.2.1:5072"},
		{"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", "192.0.2.1:5060"},
		{"SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1", "192.0.2.1:5061"},
		{"SIP/2.0/UDP [2001:db8::1]:5080", "[2001:db8::1]:5080"},
		{"SIP/2.0/UDP [::ffff:192.0.2.7]:5080", "192.0.2.7:5080"},
		{"SIP/2.0/UDP pc33.example.com:5060;received=192.0.2.9", ""},
	} {
		b := []byte(c.via)
		v, err := ParseVia(b, Span{0, len(b)})
		require.NoError(t, err, c.via)
		got, ok := v.SentByAddr(b)
		require.Equal(t, c.want != "", ok, c.via)
		if ok {
			require.Equal(t, netip.MustParseAddrPort(c.want), got, c.via)
		}
	}
}
