package sipmsg

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/sdp"
)

var sdpPublic = netip.MustParseAddr("203.0.113.1")

// readSDPCapture reads a whole SIP message the sdp package's lab captured
// (sdp/testdata/sip, see its README).
func readSDPCapture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "sdp", "testdata", "sip", name))
	require.NoError(t, err)
	return b
}

// splitSIP returns the header block (with the blank line) and the body.
func splitSIP(t testing.TB, msg []byte) (string, string) {
	t.Helper()
	i := bytes.Index(msg, []byte("\r\n\r\n"))
	require.GreaterOrEqual(t, i, 0)
	return string(msg[:i+4]), string(msg[i+4:])
}

func clLine(h string) string {
	for _, l := range strings.Split(h, "\r\n") {
		if strings.HasPrefix(strings.ToLower(l), "content-length") {
			return l
		}
	}
	return ""
}

func withoutCL(h string) string { return strings.Replace(h, clLine(h), "", 1) }

// TestAppendRewriteSDPAgainstALGCaptures rewrites the INVITEs the lab's UAs
// sent and compares with what the kernel SIP ALG delivered: the bodies are
// equal, and so is the Content-Length header line (padding included). The
// ALG also rewrites Via, From and Contact, which AppendRewriteSDP leaves
// alone.
func TestAppendRewriteSDPAgainstALGCaptures(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"alg-udptool", "sipp-uac", "baresip", "baresip-ice"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sent := readSDPCapture(t, name+".sent.sip")
			alg := readSDPCapture(t, name+".received-alg.sip")
			var m Message
			require.NoError(t, m.Parse(sent))
			out, res, err := AppendRewriteSDP([]byte("x"), &m, &sdp.Options{Public: sdpPublic, Origin: true, AllowICE: true})
			require.NoError(t, err)
			require.Equal(t, byte('x'), out[0])
			out = out[1:]
			require.True(t, res.Changed())
			gotH, gotB := splitSIP(t, out)
			algH, algB := splitSIP(t, alg)
			sentH, _ := splitSIP(t, sent)
			require.Equal(t, algB, gotB)
			require.Equal(t, clLine(algH), clLine(gotH))
			require.Equal(t, withoutCL(sentH), withoutCL(gotH), "every header but Content-Length as sent")
		})
	}
}

func TestAppendRewriteSDP(t *testing.T) {
	t.Parallel()
	body := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	newBody := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	opts := &sdp.Options{Public: sdpPublic}
	for _, tc := range []struct {
		name, in, want string
		changed        bool
	}{
		{"compact headers", "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h\r\nc: Application/SDP\r\nl: 85\r\n\r\n" + body,
			"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h\r\nc: Application/SDP\r\nl: 88\r\n\r\n" + newBody, true},
		{"padded, params", "INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp;charset=x\r\nContent-Length:    85  \r\n\r\n" + body,
			"INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp;charset=x\r\nContent-Length:    88  \r\n\r\n" + newBody, true},
		{"octets past Content-Length dropped", "INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: 85\r\n\r\n" + body + "junk",
			"INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: 88\r\n\r\n" + newBody, true},
		{"no content-length", "INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp\r\n\r\n" + body,
			"INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp\r\n\r\n" + newBody, true},
		{"no content-type, SDP body", "INVITE sip:b SIP/2.0\r\nContent-Length: 85\r\n\r\n" + body,
			"INVITE sip:b SIP/2.0\r\nContent-Length: 88\r\n\r\n" + newBody, true},
		{"bare LF message", "INVITE sip:b SIP/2.0\nContent-Type: application/sdp\nContent-Length: 85\n\n" + body,
			"INVITE sip:b SIP/2.0\nContent-Type: application/sdp\nContent-Length: 88\n\n" + newBody, true},
		{"folded header", "INVITE sip:b SIP/2.0\r\nSubject: a\r\n Content-Length: 1\r\nContent-Type: application/sdp\r\nContent-Length: 85\r\n\r\n" + body,
			"INVITE sip:b SIP/2.0\r\nSubject: a\r\n Content-Length: 1\r\nContent-Type: application/sdp\r\nContent-Length: 88\r\n\r\n" + newBody, true},
		{"not sdp", "MESSAGE sip:b SIP/2.0\r\nContent-Type: text/plain\r\nContent-Length: 85\r\n\r\n" + body,
			"MESSAGE sip:b SIP/2.0\r\nContent-Type: text/plain\r\nContent-Length: 85\r\n\r\n" + body, false},
		{"application/sdpx is not sdp", "MESSAGE sip:b SIP/2.0\r\nContent-Type: application/sdpx\r\nContent-Length: 85\r\n\r\n" + body,
			"MESSAGE sip:b SIP/2.0\r\nContent-Type: application/sdpx\r\nContent-Length: 85\r\n\r\n" + body, false},
		{"no body", "OPTIONS sip:b SIP/2.0\r\nContent-Length: 0\r\n\r\n", "OPTIONS sip:b SIP/2.0\r\nContent-Length: 0\r\n\r\n", false},
		{"public body unchanged", "INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: 88\r\n\r\n" + newBody,
			"INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: 88\r\n\r\n" + newBody, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var m Message
			require.NoError(t, m.Parse([]byte(tc.in)))
			out, res, err := AppendRewriteSDP([]byte("pre"), &m, opts)
			require.NoError(t, err)
			require.Equal(t, "pre"+tc.want, string(out))
			require.Equal(t, tc.changed, res.Changed())
		})
	}
}

func TestAppendRewriteSDPErrors(t *testing.T) {
	t.Parallel()
	var m Message
	_, _, err := AppendRewriteSDP(nil, &m, &sdp.Options{Public: sdpPublic})
	require.ErrorIs(t, err, ErrMalformed, "an unparsed message")

	require.NoError(t, m.Parse([]byte("INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nx=0\r\n")))
	out, _, err := AppendRewriteSDP([]byte("keep"), &m, &sdp.Options{Public: sdpPublic})
	require.ErrorIs(t, err, sdp.ErrMalformed)
	require.Equal(t, "keep", string(out))

	require.NoError(t, m.Parse([]byte("INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n")))
	_, _, err = AppendRewriteSDP(nil, &m, &sdp.Options{})
	require.ErrorIs(t, err, sdp.ErrBadOptions)
}

func TestAppendRewriteSDPAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	var m Message
	require.NoError(t, m.Parse(readSDPCapture(t, "baresip.sent.sip")))
	opts := &sdp.Options{Public: sdpPublic, Origin: true, Ports: []sdp.PortMap{{Local: 10008, Public: 20000}, {Local: 10009, Public: 20005}}}
	dst := make([]byte, 0, 4096)
	n := testing.AllocsPerRun(50, func() {
		if _, _, err := AppendRewriteSDP(dst[:0], &m, opts); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, n)
}

// BenchmarkAppendRewriteSDP is a UA's rewrite of its own INVITE (baresip's,
// 886 bytes): scan, SDP body rewritten, Content-Length fixed.
func BenchmarkAppendRewriteSDP(b *testing.B) {
	msg := readSDPCapture(b, "baresip.sent.sip")
	opts := &sdp.Options{Public: sdpPublic, Origin: true, Ports: []sdp.PortMap{{Local: 10008, Public: 20000}, {Local: 10009, Public: 20005}}}
	dst := make([]byte, 0, 2*len(msg))
	var m Message
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := m.Parse(msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := AppendRewriteSDP(dst[:0], &m, opts); err != nil {
			b.Fatal(err)
		}
	}
}
