package benchfloor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReplace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, want string
		pairs           []Pair
	}{
		{"in order", "a=1 b=1 c=1", "a=2 b=1 c=3", Pairs("1", "2", "c=1", "c=3")},
		{"missing pair stops", "x y", "X y", Pairs("x", "X", "z", "Z", "y", "Y")},
		{"none", "abc", "abc", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, string(Replace(nil, []byte(tt.src), tt.pairs)))
		})
	}
}

func TestReplaceAllocs(t *testing.T) {
	src := []byte("Via: SIP/2.0/UDP 192.168.1.10:5060;rport")
	pairs := Pairs(";rport", ";rport=1;received=203.0.113.1")
	dst := make([]byte, 0, 128)
	require.Zero(t, testing.AllocsPerRun(100, func() { dst = Replace(dst[:0], src, pairs) }))
}
