package sdp

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func readSIP(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sip", name))
	require.NoError(t, err)
	return b
}

// splitSIP returns the header block (with the blank line) and the body.
func splitSIP(t testing.TB, msg []byte) (string, string) {
	i := bytes.Index(msg, []byte("\r\n\r\n"))
	require.GreaterOrEqual(t, i, 0)
	return string(msg[:i+4]), string(msg[i+4:])
}

// TestSIPAgainstALGCaptures rewrites the INVITEs the lab's UAs sent and
// compares with what the kernel SIP ALG delivered: the bodies are equal,
// and so is the Content-Length header line (padding included). The ALG also
// rewrites Via, From and Contact, which is the sipmsg package's business.
func TestSIPAgainstALGCaptures(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"alg-udptool", "sipp-uac", "baresip", "baresip-ice"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sent := readSIP(t, name+".sent.sip")
			alg := readSIP(t, name+".received-alg.sip")
			out, res, err := AppendRewriteSIP([]byte("x"), sent, &Options{Public: labPublic, Origin: true, AllowICE: true})
			require.NoError(t, err)
			require.Equal(t, byte('x'), out[0])
			out = out[1:]
			require.True(t, res.Changed())
			gotH, gotB := splitSIP(t, out)
			algH, algB := splitSIP(t, alg)
			sentH, _ := splitSIP(t, sent)
			require.Equal(t, algB, gotB)
			require.Equal(t, clLine(algH), clLine(gotH))
			// Every header other than Content-Length is as sent.
			require.Equal(t, withoutCL(sentH), withoutCL(gotH))
		})
	}
}

func clLine(h string) string {
	for _, l := range strings.Split(h, "\r\n") {
		if strings.HasPrefix(strings.ToLower(l), "content-length") {
			return l
		}
	}
	return ""
}

func withoutCL(h string) string {
	return strings.Replace(h, clLine(h), "", 1)
}

func TestAppendRewriteSIP(t *testing.T) {
	t.Parallel()
	body := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	newBody := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	opts := &Options{Public: labPublic}
	for _, tc := range []struct {
		name, in, want string
		changed        bool
	}{
		{"compact headers", "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h\r\nc: Application/SDP\r\nl: 85\r\n\r\n" + body,
			"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h\r\nc: Application/SDP\r\nl: 88\r\n\r\n" + newBody, true},
		{"padded, params, trailing bytes kept", "INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp;charset=x\r\nContent-Length:    85  \r\n\r\n" + body + "junk",
			"INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp;charset=x\r\nContent-Length:    88  \r\n\r\n" + newBody + "junk", true},
		{"no content-length", "INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp\r\n\r\n" + body,
			"INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp\r\n\r\n" + newBody, true},
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
			out, res, err := AppendRewriteSIP([]byte("pre"), []byte(tc.in), opts)
			require.NoError(t, err)
			require.Equal(t, "pre"+tc.want, string(out))
			require.Equal(t, tc.changed, res.Changed())
		})
	}
}

func TestAppendRewriteSIPErrors(t *testing.T) {
	t.Parallel()
	opts := &Options{Public: labPublic}
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"no blank line", "INVITE sip:b SIP/2.0\r\nContent-Length: 0\r\n"},
		{"short body", "INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: 50\r\n\r\nv=0\r\n"},
		{"two lengths", "INVITE sip:b SIP/2.0\r\nContent-Length: 5\r\nl: 5\r\n\r\nv=0\r\n"},
		{"bad length", "INVITE sip:b SIP/2.0\r\nContent-Length: 5x\r\n\r\nv=0\r\n"},
		{"huge length", "INVITE sip:b SIP/2.0\r\nContent-Length: 123456789\r\n\r\nv=0\r\n"},
		{"bad sdp", "INVITE sip:b SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nx=0\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, _, err := AppendRewriteSIP([]byte("keep"), []byte(tc.in), opts)
			require.ErrorIs(t, err, ErrMalformed)
			require.Equal(t, "keep", string(out))
		})
	}
	_, _, err := AppendRewriteSIP(nil, []byte("x"), &Options{})
	require.ErrorIs(t, err, ErrBadOptions)
	_, _, err = AppendRewriteSIP(nil, make([]byte, MaxBodySize+1), opts)
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestAppendRewriteSIPAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	msg := readSIP(t, "baresip.sent.sip")
	opts := &Options{Public: labPublic, Origin: true, Ports: map[uint16]uint16{10008: 20000, 10009: 20005}}
	dst := make([]byte, 0, 4096)
	n := testing.AllocsPerRun(50, func() {
		if _, _, err := AppendRewriteSIP(dst[:0], msg, opts); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, n)
}
