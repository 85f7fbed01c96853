package discovery

import (
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMiniupnpdCaptures decodes answers captured from miniupnpd 2.3.1 in
// the NAT lab (testdata/seeds, also the fuzzers' seeds).
func TestMiniupnpdCaptures(t *testing.T) {
	t.Parallel()
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "seeds", p))
		require.NoError(t, err)
		return b
	}
	root, err := parseDescription(read("description/miniupnpd-2.3.1-rootDesc.xml"))
	require.NoError(t, err)
	require.Len(t, root.Device.FindService(svcWANIP2), 1, "miniupnpd 2.3.1 offers WANIPConnection:2")

	req, _ := http.NewRequest("M-SEARCH", "*", nil)
	resp, err := parseSSDPResponse(read("ssdp/miniupnpd-rootdevice"), req)
	require.NoError(t, err)
	loc, err := ssdpLocation(resp)
	require.NoError(t, err)
	require.Equal(t, "http://192.168.1.1:2869/rootDesc.xml", loc.String())

	a, err := parsePMPResponse(read("pmp/miniupnpd-addr"))
	require.NoError(t, err)
	require.Equal(t, netip.MustParseAddr("203.0.113.1"), a.External)
	mp, err := parsePMPResponse(read("pmp/miniupnpd-map"))
	require.NoError(t, err)
	require.Equal(t, uint16(0xb000), mp.ExternalPort)
	require.Equal(t, uint32(60), mp.Lifetime)

	pm, err := parsePCPResponse(read("pcp/miniupnpd-map"))
	require.NoError(t, err)
	require.Equal(t, [12]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, pm.Nonce)
	require.Equal(t, netip.MustParseAddrPort("203.0.113.1:45312"), netip.AddrPortFrom(pm.External, pm.ExternalPort))
	ann, err := parsePCPResponse(read("pcp/miniupnpd-announce"))
	require.NoError(t, err)
	require.Equal(t, uint8(pcpOpAnnounce), ann.Op)
	mis, err := parsePCPResponse(read("pcp/miniupnpd-address-mismatch"))
	require.NoError(t, err)
	require.ErrorContains(t, pcpError(mis.Result), "ADDRESS_MISMATCH")

	require.NoError(t, checkXML(read("soap/miniupnpd-GetExternalIPAddress.xml")))
}
