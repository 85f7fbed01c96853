package discovery

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/soap"

	"github.com/sipnat/sipnat/ipaddr"
)

// addSeeds adds every file of testdata/seeds/<dir> to the corpus.
func addSeeds(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join("testdata", "seeds", dir, "*"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
}

func FuzzPMPResponse(f *testing.F) {
	f.Add([]byte{0, 128, 0, 0, 0, 0, 0, 9, 203, 0, 113, 1})
	f.Add([]byte{0, 129, 0, 0, 0, 0, 1, 0, 0x13, 0xc4, 0x13, 0xc5, 0, 0, 0, 60})
	f.Add([]byte{0, 129, 0, 2})
	addSeeds(f, "pmp")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parsePMPResponse(b)
		if err != nil {
			return
		}
		if r.Result == 0 && r.Op == pmpOpAddr && !r.External.Is4() {
			t.Fatalf("address answer without IPv4 address: %+v", r)
		}
	})
}

func FuzzPCPResponse(f *testing.F) {
	nonce := [12]byte{1, 2, 3}
	req := appendPCPMapRequest(nil, nonce, false, netip.MustParseAddr("192.168.1.10"), 5060, 5060, netip.Addr{}, 60)
	req[1] |= 0x80
	f.Add(req)
	f.Add(append(append([]byte{}, req...), 1, 0, 0, 4, 0, 0, 0, 0))
	f.Add([]byte{2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	addSeeds(f, "pcp")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parsePCPResponse(b)
		if err != nil {
			return
		}
		if r.Op == pcpOpMap && r.Result == 0 && len(b) < pcpHeaderLen+pcpMapLen {
			t.Fatalf("MAP success from %d bytes", len(b))
		}
	})
}

// FuzzPrefix64: a PREFIX64 option body (RFC 7225) gives a NAT64 prefix
// that synthesises, or an error; what parses survives a round trip.
func FuzzPrefix64(f *testing.F) {
	f.Add([]byte{0, 12, 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}) // Prefix64-Length 12, 64:ff9b::/96
	addSeeds(f, "prefix64")
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePrefix64(b)
		if err != nil {
			return
		}
		if _, err := ipaddr.SynthesizeNAT64(p.Prefix, netip.MustParseAddr("192.0.2.1")); err != nil {
			t.Fatalf("parsed prefix %v does not synthesise: %v", p.Prefix, err)
		}
		enc := appendPrefix64(nil, p)
		q, err := parsePrefix64(enc[4 : 4+int(binary.BigEndian.Uint16(enc[2:4]))])
		if err != nil || q.Prefix != p.Prefix || len(q.IPv4) != len(p.IPv4) {
			t.Fatalf("round trip of %+v: %+v, %v", p, q, err)
		}
	})
}

func FuzzSSDPResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nUSN: uuid:x\r\nLOCATION: http://192.168.1.1:2869/rootDesc.xml\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nLOCATION: http://[::1]:80/\r\n\r\n"))
	addSeeds(f, "ssdp")
	req, _ := http.NewRequest("M-SEARCH", "*", nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseSSDPResponse(b, req)
		if err != nil {
			return
		}
		loc, err := ssdpLocation(r)
		if err != nil {
			t.Fatalf("accepted answer without a location: %v", err)
		}
		_ = checkGatewayURL(loc, netip.MustParseAddr("192.168.1.1"))
	})
}

func FuzzDescription(f *testing.F) {
	f.Add([]byte(descTemplate))
	f.Add([]byte("<root><device><serviceList><service><serviceType>a</serviceType></service></serviceList></device></root>"))
	addSeeds(f, "description")
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := parseDescription(b)
		if err != nil {
			return
		}
		root.Device.VisitServices(func(*goupnp.Service) {})
	})
}

// FuzzSOAPResponse checks the bound on SOAP answers and then decodes them
// the way goupnp does (envelope, fault, action body).
func FuzzSOAPResponse(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewExternalIPAddress>203.0.113.1</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>`))
	f.Add([]byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`))
	addSeeds(f, "soap")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := checkXML(b); err != nil || len(b) > maxXMLBody {
			return
		}
		var env struct {
			XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
			Body    struct {
				Fault     *soap.SOAPFaultError `xml:"Fault"`
				RawAction []byte               `xml:",innerxml"`
			} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
		}
		if err := xml.NewDecoder(bytes.NewReader(b)).Decode(&env); err != nil {
			return
		}
		if env.Body.Fault != nil {
			_ = upnpCode(upnpError(env.Body.Fault))
			return
		}
		var out struct {
			NewExternalIPAddress string
		}
		_ = xml.Unmarshal(env.Body.RawAction, &out)
	})
}
