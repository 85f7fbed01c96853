package sipmsg

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendRemoveTopValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		k              HeaderKind
		removed        bool
	}{
		{"own line", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\nv: SIP/2.0/UDP ua;branch=z9hG4bK2\r\nl: 0\r\n\r\n",
			"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP ua;branch=z9hG4bK2\r\nl: 0\r\n\r\n", HdrVia, true},
		{"first of list", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1, SIP/2.0/UDP ua;branch=z9hG4bK2\r\nl: 0\r\n\r\n",
			"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP ua;branch=z9hG4bK2\r\nl: 0\r\n\r\n", HdrVia, true},
		{"route", "INVITE sip:a@b SIP/2.0\r\nRoute: <sip:p;lr>,<sip:q;lr>\r\nl: 0\r\n\r\n",
			"INVITE sip:a@b SIP/2.0\r\nRoute: <sip:q;lr>\r\nl: 0\r\n\r\n", HdrRoute, true},
		{"none", "INVITE sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", "INVITE sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", HdrRoute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var m Message
			require.NoError(t, m.Parse([]byte(tt.in)))
			out, removed, err := AppendRemoveTopValue(nil, &m, tt.k)
			require.NoError(t, err)
			require.Equal(t, tt.removed, removed)
			require.Equal(t, tt.want, string(out))
			require.NoError(t, m.Parse(out))
		})
	}
}

func TestAppendInsertTop(t *testing.T) {
	t.Parallel()
	in := "INVITE sip:a@b SIP/2.0\r\nMax-Forwards: 70\r\nv: SIP/2.0/UDP ua;branch=z9hG4bK2\r\nl: 0\r\n\r\n"
	var m Message
	require.NoError(t, m.Parse([]byte(in)))
	out, err := AppendInsertTop(nil, &m, HdrVia, []byte("SIP/2.0/UDP 203.0.113.3;branch=z9hG4bKp"))
	require.NoError(t, err)
	require.Equal(t, strings.Replace(in, "v: ", "Via: SIP/2.0/UDP 203.0.113.3;branch=z9hG4bKp\r\nv: ", 1), string(out))
	out, err = AppendInsertTop(nil, &m, HdrRoute, []byte("<sip:p;lr>"))
	require.NoError(t, err)
	require.Equal(t, strings.Replace(in, "z9hG4bK2\r\n", "z9hG4bK2\r\nRoute: <sip:p;lr>\r\n", 1), string(out))
	_, err = AppendInsertTop(nil, &m, HdrOther, nil)
	require.ErrorIs(t, err, ErrMalformed)
}
