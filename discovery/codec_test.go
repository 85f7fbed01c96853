package discovery

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPMPCodec(t *testing.T) {
	t.Parallel()
	require.Equal(t, []byte{0, 0}, appendPMPAddrRequest(nil))
	require.Equal(t, []byte{0, 1, 0, 0, 0x13, 0xc4, 0x13, 0xc5, 0, 0, 0x1c, 0x20}, appendPMPMapRequest(nil, false, 5060, 5061, 7200))
	require.Equal(t, byte(2), appendPMPMapRequest(nil, true, 1, 1, 1)[1])

	for _, tc := range []struct {
		name string
		in   []byte
		want pmpResponse
		err  bool
	}{
		{"address", []byte{0, 128, 0, 0, 0, 0, 0, 9, 203, 0, 113, 1}, pmpResponse{Op: 0, Epoch: 9, External: netip.MustParseAddr("203.0.113.1")}, false},
		{"map", []byte{0, 129, 0, 0, 0, 0, 1, 0, 0x13, 0xc4, 0x13, 0xc5, 0, 0, 0, 60}, pmpResponse{Op: 1, Epoch: 256, InternalPort: 5060, ExternalPort: 5061, Lifetime: 60}, false},
		{"refused short", []byte{0, 129, 0, 2}, pmpResponse{Op: 1, Result: 2}, false},
		{"refused", []byte{0, 129, 0, 4, 0, 0, 0, 7}, pmpResponse{Op: 1, Result: 4, Epoch: 7}, false},
		{"truncated address", []byte{0, 128, 0, 0, 0, 0, 0, 9, 203}, pmpResponse{}, true},
		{"truncated map", []byte{0, 129, 0, 0, 0, 0, 0, 9, 1, 2, 3}, pmpResponse{}, true},
		{"request", []byte{0, 1, 0, 0}, pmpResponse{}, true},
		{"version", []byte{2, 128, 0, 0}, pmpResponse{}, true},
		{"empty", nil, pmpResponse{}, true},
		{"unknown op", []byte{0, 0x85, 0, 0, 0, 0, 0, 0}, pmpResponse{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parsePMPResponse(tc.in)
			if tc.err {
				require.ErrorIs(t, err, ErrMalformed)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, r)
		})
	}
	var re *ResultError
	require.ErrorAs(t, pmpError(3), &re)
	require.Equal(t, "network failure", re.Text)
}

func TestPCPCodec(t *testing.T) {
	t.Parallel()
	client := netip.MustParseAddr("192.168.1.10")
	ann := appendPCPAnnounceRequest(nil, client)
	require.Len(t, ann, 24)
	require.Equal(t, []byte{2, 0, 0, 0, 0, 0, 0, 0}, ann[:8])
	require.Equal(t, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 10}, ann[8:24])

	nonce := [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	req := appendPCPMapRequest(nil, nonce, false, client, 5060, 5060, netip.Addr{}, 7200)
	require.Len(t, req, 60)
	require.Equal(t, byte(1), req[1])
	require.Equal(t, nonce[:], req[24:36])
	require.Equal(t, byte(17), req[36])
	require.Equal(t, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0}, req[44:60], "any IPv4 address")

	// Build a response the way a server does: flip R, set epoch, add an option.
	resp := append([]byte{}, req...)
	resp[1] |= 0x80
	resp[3] = 0
	copy(resp[8:24], make([]byte, 16))
	resp[11] = 42 // epoch
	copy(resp[44:60], netip.MustParseAddr("203.0.113.1").AsSlice())
	copy(resp[54:60], []byte{0xff, 0xff, 203, 0, 113, 1})
	copy(resp[44:54], make([]byte, 10))
	resp = append(resp, 1, 0, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0) // THIRD_PARTY (5 bytes, padded)
	r, err := parsePCPResponse(resp)
	require.NoError(t, err)
	require.Equal(t, uint8(1), r.Op)
	require.Equal(t, uint32(42), r.Epoch)
	require.Equal(t, uint32(7200), r.Lifetime)
	require.Equal(t, nonce, r.Nonce)
	require.Equal(t, netip.MustParseAddr("203.0.113.1"), r.External)
	require.Equal(t, uint16(5060), r.ExternalPort)
	require.True(t, r.ThirdParty)

	for name, bad := range map[string][]byte{
		"short":             {2, 0x81},
		"request":           append([]byte{2, 1}, make([]byte, 58)...),
		"version":           append([]byte{1, 0x81}, make([]byte, 58)...),
		"truncated map":     append([]byte{2, 0x81, 0, 0}, make([]byte, 40)...),
		"option overruns":   append(append([]byte{}, resp[:60]...), 1, 0, 0, 200),
		"too long":          append([]byte{2, 0x80, 0, 0}, make([]byte, 1200)...),
		"not multiple of 4": append([]byte{2, 0x80, 0, 0}, make([]byte, 21)...),
	} {
		_, err := parsePCPResponse(bad)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	r, err = parsePCPResponse([]byte{2, 0x81, 0, 8})
	require.NoError(t, err, "a short error answer is still an answer")
	require.ErrorContains(t, pcpError(r.Result), "NO_RESOURCES")
}

func TestEpochValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		prev, cur uint32
		client    int64
		ok        bool
	}{
		{100, 160, 60, true},
		{100, 100, 0, true},
		{100, 99, 0, true}, // one second back is tolerated
		{100, 5, 60, false},
		{100, 101, 3600, false}, // the server lost an hour: it rebooted
		{100, 3700, 60, false},  // the server gained an hour
		{1000, 1000 + 3600, 3600 + 100, true},
	} {
		require.Equal(t, tc.ok, epochValid(tc.prev, tc.cur, tc.client), "%+v", tc)
	}
}

func TestParseSSDP(t *testing.T) {
	t.Parallel()
	req, _ := http.NewRequest("M-SEARCH", "*", nil)
	good := "HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nUSN: uuid:x\r\nLOCATION: http://192.168.1.1:2869/rootDesc.xml\r\n\r\n"
	r, err := parseSSDPResponse([]byte(good), req)
	require.NoError(t, err)
	loc, err := ssdpLocation(r)
	require.NoError(t, err)
	require.Equal(t, "192.168.1.1:2869", loc.Host)
	require.NoError(t, checkGatewayURL(loc, netip.MustParseAddr("192.168.1.1")))
	require.ErrorIs(t, checkGatewayURL(loc, netip.MustParseAddr("192.168.1.2")), ErrNotGateway)

	for name, bad := range map[string]string{
		"status":      strings.Replace(good, "200 OK", "404 Not Found", 1),
		"no location": "HTTP/1.1 200 OK\r\nST: x\r\n\r\n",
		"ftp":         strings.Replace(good, "http://", "ftp://", 1),
		"garbage":     "NOTIFY * HTTP/1.1\r\n",
		"huge":        good + strings.Repeat("x", 3000),
	} {
		_, err := parseSSDPResponse([]byte(bad), req)
		require.Error(t, err, name)
	}
}

func TestParseDescription(t *testing.T) {
	t.Parallel()
	root, err := parseDescription([]byte(strings.ReplaceAll(strings.ReplaceAll(descTemplate, "%[1]s", "1"), "%[2]s", svcWANIP1)))
	require.NoError(t, err)
	require.Len(t, root.Device.FindService(svcWANIP1), 1)
	_, err = parseDescription([]byte(strings.Repeat("<a>", 100)))
	require.ErrorIs(t, err, ErrTooDeep)
	_, err = parseDescription([]byte("<root><device>"))
	require.ErrorIs(t, err, ErrMalformed)
	require.NoError(t, checkXML(nil))
}

func TestProtocolNames(t *testing.T) {
	t.Parallel()
	for _, p := range []Protocol{ProtoPCP, ProtoNATPMP, ProtoUPnP} {
		q, err := ParseProtocol(p.String())
		require.NoError(t, err)
		require.Equal(t, p, q)
	}
	_, err := ParseProtocol("smtp")
	require.Error(t, err)
	require.Equal(t, "renewed", EventRenewed.String())
}
