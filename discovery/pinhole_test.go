package discovery

import (
	"context"
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

	"github.com/sipnat/sipnat/clock"
	"github.com/stretchr/testify/require"
)

// fakeFirewall is an IGD:2 on [::1] with a WANIPConnection:2 and a
// WANIPv6FirewallControl:1 service: what miniupnpd cannot be made to do
// (forget a pinhole between two renewals) it does on request.
type fakeFirewall struct {
	srv  *httptest.Server
	ssdp net.PacketConn

	mu       sync.Mutex
	next     uint16
	pinholes map[uint16]string // UniqueID -> "client port proto lease"
	actions  []string
}

const firewallDesc = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><friendlyName>fake</friendlyName>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/ctl</controlURL><eventSubURL>/evt</eventSubURL><SCPDURL>/scpd.xml</SCPDURL></service>
<service><serviceType>urn:schemas-upnp-org:service:WANIPv6FirewallControl:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPv6Firewall1</serviceId>
<controlURL>/ctl6</controlURL><eventSubURL>/evt6</eventSubURL><SCPDURL>/scpd6.xml</SCPDURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>`

var soapField = regexp.MustCompile(`<(\w+)>([^<]*)</\w+>`)

func newFakeFirewall(t *testing.T) *fakeFirewall {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	f := &fakeFirewall{next: 1, pinholes: map[uint16]string{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serveHTTP))
	f.srv.Listener.Close()
	f.srv.Listener = ln
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	c, err := net.ListenPacket("udp6", "[::1]:0")
	require.NoError(t, err)
	f.ssdp = c
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, src, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if strings.HasPrefix(string(buf[:n]), "M-SEARCH") {
				resp := "HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nUSN: uuid:fake::upnp:rootdevice\r\nLOCATION: http://" + ln.Addr().String() + "/desc.xml\r\n\r\n"
				c.WriteTo([]byte(resp), src)
			}
		}
	}()
	return f
}

func (f *fakeFirewall) forget() {
	f.mu.Lock()
	f.pinholes = map[uint16]string{}
	f.mu.Unlock()
}

func (f *fakeFirewall) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.actions...)
}

func (f *fakeFirewall) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/desc.xml" {
		fmt.Fprint(w, firewallDesc)
		return
	}
	action := r.Header.Get("SOAPACTION")
	svc := strings.Trim(action[:strings.LastIndex(action, "#")], `"`)
	action = strings.Trim(action[strings.LastIndex(action, "#")+1:], `"`)
	body := make([]byte, 8192)
	n, _ := r.Body.Read(body)
	args := map[string]string{}
	for _, m := range soapField.FindAllStringSubmatch(string(body[:n]), -1) {
		args[m[1]] = m[2]
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ok := func(inner string) { soapOK(w, action, svc, inner) }
	fault := func(code int, desc string) { soapFault(w, code, desc) }
	id64, _ := strconv.ParseUint(args["UniqueID"], 10, 16)
	id := uint16(id64)
	switch action {
	case "GetExternalIPAddress":
		ok("<NewExternalIPAddress>203.0.113.1</NewExternalIPAddress>")
	case "AddPinhole":
		id = f.next
		f.next++
		f.pinholes[id] = args["InternalClient"] + " " + args["InternalPort"] + " " + args["Protocol"] + " " + args["LeaseTime"]
		f.actions = append(f.actions, fmt.Sprintf("add %d %s", id, f.pinholes[id]))
		ok(fmt.Sprintf("<UniqueID>%d</UniqueID>", id))
	case "UpdatePinhole":
		f.actions = append(f.actions, fmt.Sprintf("update %d %s", id, args["NewLeaseTime"]))
		if _, found := f.pinholes[id]; !found {
			fault(704, "NoSuchEntry")
			return
		}
		ok("")
	case "DeletePinhole":
		f.actions = append(f.actions, fmt.Sprintf("delete %d", id))
		if _, found := f.pinholes[id]; !found {
			fault(704, "NoSuchEntry")
			return
		}
		delete(f.pinholes, id)
		ok("")
	default:
		fault(401, "Invalid Action")
	}
}

// TestPinholeRenewal: an IPv6 pinhole over IGD:2 is opened with
// AddPinhole (lease capped at 86400 s), renewed with UpdatePinhole on its
// UniqueID, opened again when the gateway answers 704 NoSuchEntry (it lost
// the pinhole), and deleted by its new UniqueID; the mapping's external
// address is the UA's own.
func TestPinholeRenewal(t *testing.T) {
	t.Parallel()
	fw := newFakeFirewall(t)
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	local := netip.MustParseAddr("::1")
	m := NewMapper(MapperConfig{Gateway: local, LocalAddr: local, Clock: clk, Lifetime: 48 * time.Hour,
		Protocols: []Protocol{ProtoUPnP}, UPnPTimeout: 2 * time.Second,
		SSDPAddrs: []netip.AddrPort{fw.ssdp.LocalAddr().(*net.UDPAddr).AddrPort()}})
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mp, err := m.Map(ctx, "udp", 5062)
	require.NoError(t, err)
	require.Equal(t, netip.AddrPortFrom(local, 5062), mp.External)
	require.Equal(t, 24*time.Hour, mp.Lifetime, "IGD:2 caps a pinhole lease at 86400 s")
	m.Refresh(ctx)
	fw.forget()
	m.Refresh(ctx)
	got := m.Mappings()
	require.Len(t, got, 1)
	require.Equal(t, 2, got[0].Renewals)
	require.NoError(t, m.Unmap(ctx, "udp", 5062))
	require.Equal(t, []string{
		"add 1 ::1 5062 17 86400",
		"update 1 86400",
		"update 1 86400",
		"add 2 ::1 5062 17 86400",
		"delete 2",
	}, fw.log())
}
