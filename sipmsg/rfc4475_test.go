package sipmsg

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// rfc4475Cases is every message of RFC 4475 (testdata/rfc4475, the
// archive of its Appendix A) with the answer sipmsg gives: the sentinel
// Parse returns, else the one Check returns, and the status a proxy
// answers a request with (StatusFor). Tolerated messages get nil, nil, 0.
var rfc4475Cases = []struct {
	file, section string
	parse, check  error
	status        int
}{
	// §3.1.1 valid messages
	{"wsinv", "3.1.1.1", nil, nil, 0},
	{"intmeth", "3.1.1.2", nil, nil, 0},
	{"esc01", "3.1.1.3", nil, nil, 0},
	{"escnull", "3.1.1.4", nil, nil, 0},
	{"esc02", "3.1.1.5", nil, nil, 0},
	{"lwsdisp", "3.1.1.6", nil, nil, 0},
	{"longreq", "3.1.1.7", nil, nil, 0},
	{"dblreq", "3.1.1.8", nil, nil, 0},
	{"semiuri", "3.1.1.9", nil, nil, 0},
	{"transports", "3.1.1.10", nil, nil, 0},
	{"mpart01", "3.1.1.11", nil, nil, 0},
	{"unreason", "3.1.1.12", nil, nil, 0},
	{"noreason", "3.1.1.13", nil, nil, 0},
	// §3.1.2 invalid messages
	{"badinv01", "3.1.2.1", nil, ErrMalformed, 400},
	{"clerr", "3.1.2.2", ErrIncomplete, nil, 400},
	{"ncl", "3.1.2.3", ErrMalformed, nil, 400},
	{"scalar02", "3.1.2.4", nil, ErrMalformed, 400},
	{"scalarlg", "3.1.2.5", nil, ErrMalformed, 400}, // a response: dropped
	{"quotbal", "3.1.2.6", nil, ErrMalformed, 400},
	{"ltgtruri", "3.1.2.7", nil, ErrRequestURI, 400},
	{"lwsruri", "3.1.2.8", ErrMalformed, nil, 400},
	{"lwsstart", "3.1.2.9", ErrMalformed, nil, 400},
	{"trws", "3.1.2.10", ErrMalformed, nil, 400},
	{"escruri", "3.1.2.11", nil, ErrRequestURI, 400},
	{"baddate", "3.1.2.12", nil, nil, 0}, // Date is not read: forwarded
	{"regbadct", "3.1.2.13", nil, ErrMalformed, 400},
	{"badaspec", "3.1.2.14", nil, ErrMalformed, 400},
	// the archived message ends without the empty line after its headers;
	// with it, Check rejects the display names (TestRFC4475DisplayName)
	{"baddn", "3.1.2.15", ErrIncomplete, nil, 400},
	{"badvers", "3.1.2.16", nil, ErrVersion, 505},
	{"mismatch01", "3.1.2.17", nil, ErrMalformed, 400},
	{"mismatch02", "3.1.2.18", nil, ErrMalformed, 400},
	{"bigcode", "3.1.2.19", ErrMalformed, nil, 400}, // a response: dropped
	// §3.2 transaction layer, §3.3 application layer, §3.4 RFC 2543
	{"badbranch", "3.2.1", nil, nil, 0},
	{"insuf", "3.3.1", nil, ErrNoHeader, 400},
	{"unkscm", "3.3.2", nil, nil, 0},
	{"novelsc", "3.3.3", nil, nil, 0},
	{"unksm2", "3.3.4", nil, nil, 0},
	{"bext01", "3.3.5", nil, nil, 0},
	{"invut", "3.3.6", nil, nil, 0},
	{"regaut01", "3.3.7", nil, nil, 0},
	{"multi01", "3.3.8", nil, ErrMalformed, 400},
	{"mcl01", "3.3.9", ErrMalformed, nil, 400},
	{"bcast", "3.3.10", nil, nil, 0},
	{"zeromf", "3.3.11", nil, nil, 0},
	{"cparam01", "3.3.12", nil, nil, 0},
	{"cparam02", "3.3.13", nil, nil, 0},
	{"regescrt", "3.3.14", nil, nil, 0},
	{"sdp01", "3.3.15", nil, nil, 0},
	{"inv2543", "3.4.1", nil, nil, 0},
}

func readRFC4475(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "rfc4475", name+".dat"))
	require.NoError(t, err)
	return b
}

// TestRFC4475 gives every message of the RFC its documented answer, and
// runs every reader and rewrite on those that scan.
func TestRFC4475(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "rfc4475", "*.dat"))
	require.NoError(t, err)
	require.Len(t, files, len(rfc4475Cases), "one case per archived message")
	for _, tc := range rfc4475Cases {
		t.Run(tc.section+"-"+tc.file, func(t *testing.T) {
			t.Parallel()
			b := readRFC4475(t, tc.file)
			var m Message
			err := m.Parse(b)
			if tc.parse != nil {
				require.ErrorIs(t, err, tc.parse)
				require.Equal(t, tc.status, StatusFor(err))
				return
			}
			require.NoError(t, err)
			err = m.Check()
			if tc.check != nil {
				require.ErrorIs(t, err, tc.check)
				var pe *ParseError
				require.ErrorAs(t, err, &pe)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.status, StatusFor(err))
			exerciseAll(t, &m)
			if tc.check == nil && tc.section < "3.1.2" {
				requireExactFix(t, b)
			}
		})
	}
}

// exerciseAll runs the readers and rewrites on m: nothing panics, and every
// rewrite that succeeds scans again and is idempotent.
func exerciseAll(t *testing.T, m *Message) {
	src := netip.MustParseAddrPort("203.0.113.9:40000")
	_, _ = m.NATTest(src, ^NATTest(0), SDPNATCheck)
	_, _ = m.PublicAddr()
	_, _ = RegistrationFor(m, src, UDP)
	tr := NewContactTracker(netip.MustParseAddrPort("192.168.1.2:5060"), src, UDP)
	_ = tr.Observe(m, src)
	_, _ = DetectALG(m, m, src)
	_, _, _, _ = HandleRURIAlias(nil, m, nil)
	for _, k := range []HeaderKind{HdrVia, HdrRoute, HdrContact} {
		_, _, _ = AppendRemoveTopValue(nil, m, k)
	}
	for _, f := range []Fix{
		{Via: true, ForceRport: true, Contact: ContactRewrite, SDP: true},
		{Via: true, Contact: ContactAlias, Transport: TCP, RecordRoute: []byte("<sip:203.0.113.2;lr>"), Path: []byte("<sip:203.0.113.2;lr>")},
	} {
		out, err := AppendFix(nil, m, src, &f)
		if err != nil {
			continue
		}
		var m2 Message
		require.NoError(t, m2.Parse(out), "output scans")
		out2, err := AppendFix(nil, &m2, src, &f)
		require.NoError(t, err)
		require.Equal(t, string(out), string(out2), "idempotent")
	}
}

// requireExactFix checks that a Via and Contact fix changes only the top
// Via, the Contacts and Content-Length: the start line, every other header
// line and the body are copied byte for byte.
func requireExactFix(t *testing.T, b []byte) {
	t.Helper()
	var m Message
	require.NoError(t, m.Parse(b))
	src := netip.MustParseAddrPort("203.0.113.9:40000")
	out, err := AppendFix(nil, &m, src, &Fix{Via: true, ForceRport: true, Contact: ContactAlias})
	require.NoError(t, err)
	var m2 Message
	require.NoError(t, m2.Parse(out))
	require.Equal(t, m.start.In(b), m2.start.In(out))
	require.Equal(t, m.Body(), m2.Body())
	require.Equal(t, kept(&m), kept(&m2))
	require.Zero(t, m2.Trailing())
}

// kept lists the header lines a Via/Contact fix must not touch.
func kept(m *Message) [][]byte {
	var lines [][]byte
	topVia := -1
	if it := m.Values(HdrVia); it.Next() {
		topVia = it.Header()
	}
	for i := 0; i < m.NumHeaders(); i++ {
		switch m.HeaderKind(i) {
		case HdrContact, HdrContentLength:
			continue
		}
		if i == topVia {
			continue
		}
		lines = append(lines, m.HeaderLineSpan(i).In(m.Bytes()))
	}
	return lines
}

// TestRFC4475DisplayName: the unquoted display names with a comma of
// §3.1.2.15 are rejected by Check once the archived message has its
// closing empty line.
func TestRFC4475DisplayName(t *testing.T) {
	t.Parallel()
	b := append(readRFC4475(t, "baddn"), "\r\n"...)
	var m Message
	require.NoError(t, m.Parse(b))
	err := m.Check()
	require.ErrorIs(t, err, ErrMalformed)
	require.Equal(t, 400, StatusFor(err))
}

// TestDatagramTrailing: octets after the Content-Length body (RFC 4475
// §3.1.1.8, a second request in one datagram) are counted and never
// copied by any Append function.
func TestDatagramTrailing(t *testing.T) {
	t.Parallel()
	b := readRFC4475(t, "dblreq")
	second := bytes.Index(b, []byte("INVITE sip:joe@example.com"))
	require.Positive(t, second)
	var m Message
	require.NoError(t, m.Parse(b))
	require.Equal(t, len(b)-m.Len(), m.Trailing())
	require.Equal(t, second-2, m.Len(), "the body ends at Content-Length 0 (the CRLF after it is dropped too)")
	require.Equal(t, b[:m.Len()], m.Bytes())
	src := netip.MustParseAddrPort("203.0.113.9:40000")
	upper := func(dst, body []byte) ([]byte, error) { return append(append(dst, body...), "x"...), nil }
	outs := map[string]func() ([]byte, error){
		"Bytes": func() ([]byte, error) { return m.Bytes(), nil },
		"AppendFix": func() ([]byte, error) {
			return AppendFix(nil, &m, src, &Fix{Via: true, Contact: ContactAlias, Path: []byte("<sip:203.0.113.2;lr>")})
		},
		"AppendFix body": func() ([]byte, error) { return AppendFix(nil, &m, src, &Fix{Body: upper}) },
		"AppendRecordRoute": func() ([]byte, error) {
			return AppendRecordRoute(nil, &m, []byte("<sip:203.0.113.2;lr>"))
		},
		"AppendRemoveTopValue": func() ([]byte, error) {
			out, _, err := AppendRemoveTopValue(nil, &m, HdrVia)
			return out, err
		},
		"AppendInsertTop": func() ([]byte, error) {
			return AppendInsertTop(nil, &m, HdrVia, []byte("SIP/2.0/UDP 203.0.113.2;branch=z9hG4bK1"))
		},
	}
	for name, f := range outs {
		out, err := f()
		require.NoError(t, err, name)
		require.NotContains(t, string(out), "INVITE sip:joe", name)
		var m2 Message
		require.NoError(t, m2.Parse(out), name)
		require.Zero(t, m2.Trailing(), name)
	}
	// an alias in the Request-URI: the restored request stops at the body too
	aliased := append([]byte("OPTIONS sip:a@192.0.2.1;alias=198.51.100.7~5060~1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK2\r\nContent-Length: 0\r\n\r\n"), b...)
	require.NoError(t, m.Parse(aliased))
	require.Equal(t, len(b), m.Trailing())
	out, _, found, err := HandleRURIAlias(nil, &m, nil)
	require.NoError(t, err)
	require.True(t, found)
	require.NotContains(t, string(out), "REGISTER")
}
