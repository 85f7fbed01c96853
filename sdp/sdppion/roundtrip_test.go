package sdppion

import (
	"strings"
	"testing"

	psdp "github.com/pion/sdp/v3"
	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/sdp"
)

// TestPionRoundTripChanges demonstrates, input by input, what a pion/sdp
// Unmarshal + Marshal round trip (v3.0.20) changes or refuses, and that the
// byte path keeps every byte it does not rewrite. The package documentation
// lists the same differences.
func TestPionRoundTripChanges(t *testing.T) {
	t.Parallel()
	const base = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n"
	tests := []struct {
		name string
		in   string
		pion string // pion's output; "" when pion refuses the input
		err  string // pion's error when it refuses
	}{
		{"bare LF becomes CRLF",
			"v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n",
			"v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", ""},
		{"leading zeros dropped (o= ids, v=, m= port)",
			"v=00\r\no=- 0123 007 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 06000 RTP/AVP 0\r\n",
			"v=0\r\no=- 123 7 IN IP4 203.0.113.1\r\ns=-\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n", ""},
		{"blank runs and tabs collapsed, trailing blanks dropped",
			"v=0\r\no=-  1\t1 IN IP4 10.0.0.1 \r\ns=-\r\nc=IN  IP4 10.0.0.1  \r\nt=0 0\r\nm=audio 4000 RTP/AVP  0  8\r\n",
			"v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\n", ""},
		{"short o= filled in",
			"v=0\r\no=- 1 1 IN\r\ns=-\r\nt=0 0\r\n",
			"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", ""},
		{"media lines reordered",
			base + "m=audio 4000 RTP/AVP 0\r\na=sendrecv\r\nb=AS:64\r\nc=IN IP4 10.0.0.1\r\n",
			"v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 203.0.113.1\r\nb=AS:64\r\na=sendrecv\r\n", ""},
		{"blank lines dropped",
			base + "\r\nm=audio 4000 RTP/AVP 0\r\n\r\n",
			"v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", ""},
		{"repeated media c= keeps only the last",
			base + "m=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.1\r\nc=IN IP4 198.51.100.2\r\n",
			"v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 198.51.100.2\r\n", ""},
		{"empty attribute value loses its colon",
			base + "a=x:\r\n",
			"v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nt=0 0\r\na=x\r\n", ""},
		{"r= units turned into seconds",
			base + "r=7d 1h 0 25h\r\n",
			"v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nt=0 0\r\nr=604800 3600 0 90000\r\n", ""},
		{"o= session id beyond 64 bits silently becomes 0",
			"v=0\r\no=- 18446744073709551616 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n",
			"v=0\r\no=- 0 1 IN IP4 203.0.113.1\r\ns=-\r\nt=0 0\r\n", ""},
		{"CR inside a line eats the rest of it",
			base + "m=audio 4000 RTP/AVP 0\r\na=x\ry\r\n",
			"v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=x\r\r\n", ""},
		{"refused: no final line ending", base + "m=audio 4000 RTP/AVP 0\r\na=ptime:20", "", "EOF"},
		{"refused: m=image (T.38 fax)", base + "m=image 4000 udptl t38\r\n", "", "invalid value `image`"},
		{"refused: lower-case proto", base + "m=audio 4000 rtp/avp 0\r\n", "", "invalid numeric value"},
		{"refused: unknown line type", base + "x=unknown\r\n", "", "syntax error"},
		{"refused: session a= before t=", "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\na=tool:x\r\nt=0 0\r\n", "", "syntax error"},
		{"refused: unknown bandwidth type", "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nb=FOO:5\r\nt=0 0\r\n", "", "invalid value"},
	}
	opts := &sdp.Options{Public: labPublic, Origin: true}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The byte path: exactly the input with 10.0.0.1 replaced.
			out, _, err := sdp.AppendRewrite(nil, []byte(tc.in), opts)
			require.NoError(t, err)
			require.Equal(t, strings.ReplaceAll(tc.in, "10.0.0.1", "203.0.113.1"), string(out))

			// pion: Unmarshal, the same change, Marshal.
			var sd psdp.SessionDescription
			err = sd.Unmarshal([]byte(tc.in))
			if tc.pion == "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			_, err = RewriteSession(&sd, opts)
			require.NoError(t, err)
			m, err := sd.Marshal()
			require.NoError(t, err)
			require.Equal(t, tc.pion, string(m))
			require.NotEqual(t, string(out), string(m))
		})
	}
}
