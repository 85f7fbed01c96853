package nat

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/stun/v2"
	"github.com/stretchr/testify/require"
)

// TestRFC5769Responses decodes the sample responses of RFC 5769 sections
// 2.2 and 2.3 (with SOFTWARE, MESSAGE-INTEGRITY and FINGERPRINT).
func TestRFC5769Responses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		hex  string
		want string
	}{
		{"0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a64300080014" +
			"2b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96", "192.0.2.1:32853"},
		{"010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a1470113a9faa5d3f179" +
			"bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c",
			"[2001:db8:1234:5678:11:2233:4455:6677]:32853"},
	}
	for _, tt := range tests {
		b, err := hex.DecodeString(tt.hex)
		require.NoError(t, err)
		require.True(t, IsSTUN(b))
		var m stun.Message
		r, serverErr, err := decodeAnswer(&m, b)
		require.NoError(t, err)
		require.NoError(t, serverErr)
		require.Equal(t, netip.MustParseAddrPort(tt.want), r.Mapped)
		require.True(t, r.XOR)
		pr, err := ParseResponse(b)
		require.NoError(t, err)
		require.Equal(t, r, pr)
		b[len(b)-1] ^= 1
		_, _, err = decodeAnswer(&m, b)
		require.ErrorIs(t, err, ErrMalformed, "bad fingerprint")
	}
}

func TestIsSTUN(t *testing.T) {
	t.Parallel()
	var req stun.Message
	buildRequest(&req, [12]byte{1}, BindingOptions{})
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"binding request", req.Raw, true},
		{"SIP", []byte("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1\r\n\r\n"), false},
		{"CRLF keep-alive", []byte("\r\n\r\n"), false},
		{"short", req.Raw[:19], false},
		{"truncated", req.Raw[:len(req.Raw)-4], false},
		{"no cookie (RFC 3489)", append([]byte{0, 1, 0, 0, 1, 2, 3, 4}, make([]byte, 12)...), false},
		{"RTP", append([]byte{0x80, 0, 0, 1}, make([]byte, 28)...), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, IsSTUN(tt.b), tt.name)
	}
	_, err := ParseResponse([]byte("SIP/2.0 200 OK\r\n\r\n"))
	require.ErrorIs(t, err, ErrNotSTUN)
	require.False(t, strings.Contains(ErrNotSTUN.Error(), "%"))
}
