package discovery

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// fakeGW is a gateway on 127.0.0.1 speaking NAT-PMP and/or PCP over UDP
// and, optionally, UPnP IGD (SSDP over UDP, description and SOAP over HTTP).
// Its epoch follows the fake clock.
type fakeGW struct {
	t     *testing.T
	clock *clock.Fake
	pmp   bool
	pcp   bool

	conn net.PacketConn

	mu         sync.Mutex
	start      time.Time
	external   netip.Addr
	maxLife    uint32
	silent     bool
	junk       int               // send this many junk datagrams before each answer
	junkOnly   bool              // send only the junk, never an answer
	badNonce   int               // send this many MAP answers with a wrong nonce first
	refuseMap  byte              // answer every MAP with this result code
	pmpMaps    map[uint32]uint16 // proto<<16|internal -> external
	pcpMaps    map[[12]byte]uint16
	requests   map[string]int
	lastClient netip.Addr
	// prefix64 are the PREFIX64 options (RFC 7225) an ANNOUNCE that asks
	// for them gets back; prefix64Raw is sent as is after them (a broken
	// option).
	prefix64    []Prefix64
	prefix64Raw []byte
}

func newFakeGW(t *testing.T, clock *clock.Fake, pmp, pcp bool) *fakeGW {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	g := &fakeGW{t: t, clock: clock, pmp: pmp, pcp: pcp, conn: c, start: clock.Now().Add(-100 * time.Second),
		external: netip.MustParseAddr("203.0.113.1"), maxLife: 7200,
		pmpMaps: map[uint32]uint16{}, pcpMaps: map[[12]byte]uint16{}, requests: map[string]int{}}
	t.Cleanup(func() { c.Close() })
	go g.serve()
	return g
}

// junkPacket is the i-th junk answer to request req: oversized, truncated,
// another opcode, a result for a request never sent, or noise.
func junkPacket(req []byte, i int) []byte {
	switch i % 5 {
	case 0:
		return make([]byte, 2000) // over the PCP maximum
	case 1:
		return []byte{req[0], 0x80 | req[1]} // truncated
	case 2:
		return append([]byte{req[0], 0x80 | (req[1] + 1), 0, 0}, make([]byte, 56)...) // other opcode
	case 3:
		b := append([]byte(nil), req...)
		if len(b) > 1 {
			b[1] |= 0x80
		}
		return b // the request echoed as an answer
	}
	return []byte("HTTP/1.1 200 OK\r\n\r\n")
}

func (g *fakeGW) port() uint16 { return uint16(g.conn.LocalAddr().(*net.UDPAddr).Port) }

func (g *fakeGW) count(what string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests[what]
}

func (g *fakeGW) set(f func(g *fakeGW)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

// restart forgets every mapping and starts a new epoch at 0.
func (g *fakeGW) restart() {
	g.set(func(g *fakeGW) {
		g.start = g.clock.Now()
		g.pmpMaps = map[uint32]uint16{}
		g.pcpMaps = map[[12]byte]uint16{}
	})
}

func (g *fakeGW) epoch() uint32 { return uint32(g.clock.Now().Sub(g.start) / time.Second) }

func (g *fakeGW) serve() {
	buf := make([]byte, 2048)
	for {
		n, src, err := g.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		g.mu.Lock()
		junk, only := g.junk, g.junkOnly
		g.mu.Unlock()
		for i := range junk {
			g.conn.WriteTo(junkPacket(buf[:n], i), src)
		}
		if only {
			continue
		}
		for _, out := range g.handle(buf[:n]) {
			g.conn.WriteTo(out, src)
		}
	}
}

func (g *fakeGW) handle(b []byte) [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.silent || len(b) < 2 {
		return nil
	}
	switch b[0] {
	case 0:
		if !g.pmp {
			return nil
		}
		return [][]byte{g.handlePMP(b)}
	case 2:
		if !g.pcp {
			if g.pmp { // RFC 6887 9: a NAT-PMP server says UNSUPP_VERSION
				return [][]byte{{0, 0x80 | b[1], 0, 1, 0, 0, 0, 0}}
			}
			return nil
		}
		return g.handlePCP(b)
	}
	return nil
}

func (g *fakeGW) handlePMP(b []byte) []byte {
	out := []byte{0, 0x80 | b[1], 0, 0}
	out = binary.BigEndian.AppendUint32(out, g.epoch())
	switch b[1] {
	case 0:
		g.requests["pmp-addr"]++
		a := g.external.As4()
		return append(out, a[:]...)
	case 1, 2:
		g.requests["pmp-map"]++
		if len(b) < 12 {
			out[3] = 3
			return out
		}
		internal := binary.BigEndian.Uint16(b[4:6])
		ext := binary.BigEndian.Uint16(b[6:8])
		life := min(binary.BigEndian.Uint32(b[8:12]), g.maxLife)
		key := uint32(b[1])<<16 | uint32(internal)
		if life == 0 {
			delete(g.pmpMaps, key)
			ext = 0
		} else {
			if ext == 0 {
				ext = internal
			}
			g.pmpMaps[key] = ext
		}
		out = binary.BigEndian.AppendUint16(out, internal)
		out = binary.BigEndian.AppendUint16(out, ext)
		return binary.BigEndian.AppendUint32(out, life)
	}
	out[3] = 5
	return out[:8]
}

func (g *fakeGW) handlePCP(b []byte) [][]byte {
	if len(b) < 24 {
		return nil
	}
	op := b[1]
	life := min(binary.BigEndian.Uint32(b[4:8]), g.maxLife)
	g.lastClient = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
	hdr := func(result byte, life uint32) []byte {
		out := []byte{2, 0x80 | op, 0, result}
		out = binary.BigEndian.AppendUint32(out, life)
		out = binary.BigEndian.AppendUint32(out, g.epoch())
		return append(out, make([]byte, 12)...)
	}
	switch op {
	case 0:
		g.requests["pcp-announce"]++
		out := hdr(0, 0)
		if hasPCPOption(b[24:], pcpOptPrefix64) {
			g.requests["pcp-prefix64"]++
			for _, p := range g.prefix64 {
				out = appendPrefix64(out, p)
			}
			out = append(out, g.prefix64Raw...)
		}
		return [][]byte{out}
	case 1:
		g.requests["pcp-map"]++
		if len(b) < 60 {
			return [][]byte{hdr(3, 0)}
		}
		if g.refuseMap != 0 {
			return [][]byte{hdr(g.refuseMap, 0)}
		}
		var nonce [12]byte
		copy(nonce[:], b[24:36])
		internal := binary.BigEndian.Uint16(b[40:42])
		ext := binary.BigEndian.Uint16(b[42:44])
		if life == 0 {
			delete(g.pcpMaps, nonce)
			ext = 0
		} else {
			if ext == 0 {
				ext = internal
			}
			g.pcpMaps[nonce] = ext
		}
		mk := func(nonce [12]byte) []byte {
			out := hdr(0, life)
			out = append(out, nonce[:]...)
			out = append(out, b[36], 0, 0, 0)
			out = binary.BigEndian.AppendUint16(out, internal)
			out = binary.BigEndian.AppendUint16(out, ext)
			a := g.external.As16()
			return append(out, a[:]...)
		}
		var outs [][]byte
		for ; g.badNonce > 0; g.badNonce-- {
			bad := nonce
			bad[0] ^= 0xff
			outs = append(outs, mk(bad))
		}
		return append(outs, mk(nonce))
	}
	return [][]byte{hdr(4, 0)}
}

// hasPCPOption reports whether the options b of a request carry code.
func hasPCPOption(b []byte, code byte) bool {
	for len(b) >= 4 {
		if b[0] == code {
			return true
		}
		n := 4 + (int(binary.BigEndian.Uint16(b[2:4]))+3)&^3
		if n > len(b) {
			return false
		}
		b = b[n:]
	}
	return false
}

// appendPrefix64 appends p as a PREFIX64 option with its padding (a PCP
// server's side; the tests' fake server speaks it): Prefix64-Length =
// bits/8 octets of prefix and a zero Suffix up to 12 octets, then the IPv4
// prefix list when there is one.
func appendPrefix64(b []byte, p Prefix64) []byte {
	n := p.Prefix.Bits() / 8
	body := prefix64Fixed
	if len(p.IPv4) > 0 {
		body += 2 + 6*len(p.IPv4)
	}
	b = append(b, pcpOptPrefix64, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(body))
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	a := p.Prefix.Masked().Addr().As16()
	b = append(b, a[:n]...)
	b = append(b, make([]byte, 12-n)...) // Suffix
	if len(p.IPv4) > 0 {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.IPv4)))
		for _, v := range p.IPv4 {
			b = binary.BigEndian.AppendUint16(b, uint16(v.Bits()))
			four := v.Masked().Addr().As4()
			b = append(b, four[:]...)
		}
	}
	for body%4 != 0 {
		b, body = append(b, 0), body+1
	}
	return b
}

// fakeIGD is a UPnP IGD on 127.0.0.1: SSDP responder plus HTTP server.
type fakeIGD struct {
	t       *testing.T
	srv     *httptest.Server
	ssdp    net.PacketConn
	service string // service type of the WAN connection

	mu            sync.Mutex
	onlyPermanent bool
	taken         map[uint16]bool // external ports that answer 718
	maps          map[uint16]string
	leases        []string
	actions       map[string]int
	description   func(w http.ResponseWriter, r *http.Request) // override
	locationHost  string                                       // override of the LOCATION host
}

func newFakeIGD(t *testing.T, service string, ssdpAddr string, opts ...func(*fakeIGD)) *fakeIGD {
	t.Helper()
	f := &fakeIGD{t: t, service: service, taken: map[uint16]bool{}, maps: map[uint16]string{}, actions: map[string]int{}}
	for _, o := range opts {
		o(f)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.srv.Close)
	c, err := net.ListenPacket("udp4", ssdpAddr)
	require.NoError(t, err)
	f.ssdp = c
	t.Cleanup(func() { c.Close() })
	go f.serveSSDP()
	return f
}

func (f *fakeIGD) ssdpAddr() netip.AddrPort { return f.ssdp.LocalAddr().(*net.UDPAddr).AddrPort() }

func (f *fakeIGD) serveSSDP() {
	buf := make([]byte, 2048)
	for {
		n, src, err := f.ssdp.ReadFrom(buf)
		if err != nil {
			return
		}
		if !strings.HasPrefix(string(buf[:n]), "M-SEARCH") || !strings.Contains(string(buf[:n]), "ST: upnp:rootdevice") {
			continue
		}
		f.mu.Lock()
		host := f.srv.Listener.Addr().String()
		if f.locationHost != "" {
			host = f.locationHost
		}
		f.mu.Unlock()
		resp := "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: upnp:rootdevice\r\nUSN: uuid:fake::upnp:rootdevice\r\nEXT:\r\nSERVER: fake UPnP/1.1\r\nLOCATION: http://" + host + "/desc.xml\r\n\r\n"
		f.ssdp.WriteTo([]byte(resp), src)
	}
}

const descTemplate = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:%[1]s</deviceType><friendlyName>fake</friendlyName>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:%[1]s</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:%[1]s</deviceType>
<serviceList><service><serviceType>%[2]s</serviceType><serviceId>urn:upnp-org:serviceId:WANConn1</serviceId>
<controlURL>/ctl</controlURL><eventSubURL>/evt</eventSubURL><SCPDURL>/scpd.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>`

var soapArg = regexp.MustCompile(`<(New\w+)>([^<]*)</New\w+>`)

func (f *fakeIGD) serveHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	desc := f.description
	f.mu.Unlock()
	if r.URL.Path == "/desc.xml" {
		if desc != nil {
			desc(w, r)
			return
		}
		ver := "1"
		if strings.HasSuffix(f.service, ":2") {
			ver = "2"
		}
		fmt.Fprintf(w, descTemplate, ver, f.service)
		return
	}
	if r.URL.Path != "/ctl" {
		http.NotFound(w, r)
		return
	}
	action := r.Header.Get("SOAPACTION")
	action = strings.Trim(action[strings.LastIndex(action, "#")+1:], `"`)
	body := make([]byte, 8192)
	n, _ := r.Body.Read(body)
	args := map[string]string{}
	for _, m := range soapArg.FindAllStringSubmatch(string(body[:n]), -1) {
		args[m[1]] = m[2]
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions[action]++
	fault := func(code int, desc string) { soapFault(w, code, desc) }
	ok := func(inner string) { soapOK(w, action, f.service, inner) }
	ext64, _ := strconv.ParseUint(args["NewExternalPort"], 10, 16)
	ext := uint16(ext64)
	switch action {
	case "GetExternalIPAddress":
		ok("<NewExternalIPAddress>203.0.113.1</NewExternalIPAddress>")
	case "AddPortMapping", "AddAnyPortMapping":
		if action == "AddAnyPortMapping" && !strings.HasSuffix(f.service, ":2") {
			fault(401, "Invalid Action")
			return
		}
		f.leases = append(f.leases, args["NewLeaseDuration"])
		if f.onlyPermanent && args["NewLeaseDuration"] != "0" {
			fault(725, "OnlyPermanentLeasesSupported")
			return
		}
		if f.taken[ext] {
			if action == "AddAnyPortMapping" {
				for f.taken[ext] {
					ext++
				}
			} else {
				fault(718, "ConflictInMappingEntry")
				return
			}
		}
		f.maps[ext] = args["NewInternalClient"] + ":" + args["NewInternalPort"]
		if action == "AddAnyPortMapping" {
			ok(fmt.Sprintf("<NewReservedPort>%d</NewReservedPort>", ext))
		} else {
			ok("")
		}
	case "DeletePortMapping":
		if _, found := f.maps[ext]; !found {
			fault(714, "NoSuchEntryInArray")
			return
		}
		delete(f.maps, ext)
		ok("")
	default:
		fault(401, "Invalid Action")
	}
}

// soapOK writes the SOAP answer of action of service svc with the inner
// XML of its arguments.
func soapOK(w http.ResponseWriter, action, svc, inner string) {
	fmt.Fprintf(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:%sResponse xmlns:u="%s">%s</u:%sResponse></s:Body></s:Envelope>`, action, svc, inner, action)
}

// soapFault writes a UPnPError fault with code and description.
func soapFault(w http.ResponseWriter, code int, desc string) {
	w.WriteHeader(500)
	fmt.Fprintf(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode><errorDescription>%s</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`, code, desc)
}

// testConfig returns a Mapper config for the fakes.
func testConfig(clock *clock.Fake, g *fakeGW, igd *fakeIGD, events chan Event) MapperConfig {
	cfg := MapperConfig{
		Gateway:     loopback,
		LocalAddr:   loopback,
		Clock:       clock,
		Lifetime:    time.Hour,
		PMPTimeout:  400 * time.Millisecond,
		UPnPTimeout: 500 * time.Millisecond,
		PMPPort:     1, // nothing listens: closed port
		SSDPAddrs:   []netip.AddrPort{},
	}
	if g != nil {
		cfg.PMPPort = g.port()
	}
	if igd != nil {
		cfg.SSDPAddrs = []netip.AddrPort{igd.ssdpAddr()}
	} else {
		cfg.SSDPAddrs = []netip.AddrPort{netip.AddrPortFrom(loopback, 9)} // discard
	}
	if events != nil {
		cfg.OnEvent = func(e Event) { events <- e }
	}
	return cfg
}

// nextEvent waits for the next event, failing after a deadline.
func nextEvent(t *testing.T, events chan Event) Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return Event{}
	}
}
