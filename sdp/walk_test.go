package sdp

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWalkLongBodies checks the two-chain line walk (walk.go) on bodies
// long enough to be split, several times over: every private c= is found
// on its line and rewritten, and nothing else changes.
func TestWalkLongBodies(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		eol := "\r\n"
		if round%3 == 1 {
			eol = "\n"
		}
		lines := []string{"v=0", "o=- 1 1 IN IP4 198.51.100.1", "s=-", "t=0 0"}
		var want []string // findings, as Finding.String gives them
		media := -1
		n := rng.IntN(400)
		for i := 0; i < n; i++ {
			switch rng.IntN(12) {
			case 0:
				lines = append(lines, fmt.Sprintf("m=audio %d RTP/AVP 0", 1000+i))
				media++
			case 1:
				addr := fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
				lines = append(lines, "c=IN IP4 "+addr)
				where := "session-c@session"
				if media >= 0 {
					where = fmt.Sprintf("media-c@m%d", media)
				}
				want = append(want, fmt.Sprintf("%s line %d %s", where, len(lines), addr))
			case 2:
				lines = append(lines, "") // blank line
			default:
				lines = append(lines, "a=x:"+strings.Repeat("y", rng.IntN(150)))
			}
		}
		body := strings.Join(lines, eol)
		if round%2 == 0 {
			body += eol
		}
		res, err := Check([]byte(body))
		require.NoError(t, err)
		var got []string
		for _, f := range res.Findings() {
			got = append(got, f.String())
		}
		if len(want) > MaxFindings {
			want = want[:MaxFindings]
		}
		require.Equal(t, want, got, "round %d", round)

		out, res2, err := AppendRewrite(nil, []byte(body), &Options{Public: labPublic})
		require.NoError(t, err)
		require.Equal(t, res.Findings(), res2.Findings())
		for i, l := range lines {
			if strings.HasPrefix(l, "c=IN IP4 10.") {
				lines[i] = "c=IN IP4 203.0.113.1"
			}
		}
		exp := strings.Join(lines, eol)
		if round%2 == 0 {
			exp += eol
		}
		require.Equal(t, exp, string(out), "round %d", round)
	}
}
