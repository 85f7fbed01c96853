package nat

import (
	"net/netip"
	"testing"

	"github.com/pion/stun/v2"
	"github.com/stretchr/testify/require"
)

func TestAppendBindingResponse(t *testing.T) {
	t.Parallel()
	from := netip.MustParseAddrPort("203.0.113.1:40000")
	local := netip.MustParseAddrPort("203.0.113.2:5060")
	ok := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	change := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.RawAttribute{Type: stun.AttrChangeRequest, Value: []byte{0, 0, 0, 6}})
	tests := []struct {
		name string
		req  []byte
		code int // 0: success
		err  error
	}{
		{"binding", ok.Raw, 0, nil},
		{"change request", change.Raw, 420, nil},
		{"SIP", []byte("OPTIONS sip:x SIP/2.0\r\n\r\n"), 0, ErrNotSTUN},
		{"short", ok.Raw[:10], 0, ErrNotSTUN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := AppendBindingResponse(nil, tt.req, from, local)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			if tt.code != 0 {
				var m stun.Message
				require.NoError(t, stun.Decode(b, &m))
				require.Equal(t, stun.BindingError, m.Type)
				return
			}
			r, err := ParseResponse(b)
			require.NoError(t, err)
			require.Equal(t, from, r.Mapped)
			require.Equal(t, local, r.Origin)
		})
	}
}
