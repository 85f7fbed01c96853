package main

import (
	"context"
	_ "embed"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/sipmsg"
)

//go:embed testdata/kamailio.cfg
var kamailioCfg string

// startRegistrar runs kamailio without nathelper on Server1:5060 and waits
// until it answers.
func startRegistrar(t *testing.T, lab *netlab.Lab, proxy netip.Addr, defines ...string) (rpc func(...string) string) {
	dir := filepath.Join(lab.Dir(), "plain-kamailio")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	cfg := strings.NewReplacer("@SRV@", netlab.Server1.String(), "@PROXY@", proxy.String(), "@RUN@", dir).Replace(kamailioCfg)
	path := filepath.Join(dir, "kamailio.cfg")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	args := []string{"-f", path, "-DD", "-E", "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir}
	for _, d := range defines {
		args = append(args, "-A", d)
	}
	lab.Start(netlab.WAN, "kamailio", args...)
	rpc = func(args ...string) string {
		out, err := lab.Command(netlab.WAN, "kamcmd", append([]string{"-s", "unix:" + filepath.Join(dir, "kamailio_ctl")}, args...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	probe := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Peer, 0))
	defer probe.Close()
	ping := sipmsg.AppendOptions(nil, sipmsg.OptionsRequest{RequestURI: "sip:203.0.113.2", From: "sip:probe@198.51.100.2",
		SentBy: localAddr(probe), Branch: "probe", CallID: "probe", CSeq: 1})
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, err := probe.WriteToUDPAddrPort(ping, netip.AddrPortFrom(netlab.Server1, 5060))
		require.NoError(t, err)
		_ = probe.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, _, err := probe.ReadFromUDPAddrPort(buf); err == nil {
			return rpc
		}
	}
	t.Fatal("kamailio does not answer")
	return nil
}

// call sends an OPTIONS for user from the internet to the registrar and
// returns the final response.
func call(t *testing.T, lab *netlab.Lab, user, callID string) *sipmsg.Message {
	t.Helper()
	wan := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Peer, 0))
	defer wan.Close()
	opt := sipmsg.AppendOptions(nil, sipmsg.OptionsRequest{RequestURI: "sip:" + user + "@203.0.113.2", From: "sip:peer@198.51.100.2",
		To: "sip:" + user + "@203.0.113.2", SentBy: localAddr(wan), Branch: callID, CallID: callID, CSeq: 1})
	buf := make([]byte, 65535)
	final := new(sipmsg.Message)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, err := wan.WriteToUDPAddrPort(opt, netip.AddrPortFrom(netlab.Server1, 5060))
		require.NoError(t, err)
		_ = wan.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, _, err := wan.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if final.Parse(append([]byte(nil), buf[:n]...)) == nil && final.StatusCode() >= 200 {
				return final
			}
		}
	}
	t.Fatalf("no final response to the OPTIONS for %s", user)
	return nil
}

func localAddr(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// TestLabNATProxy: kamailio without nathelper behind natproxy; sipp behind
// each NAT registers its private Contact through the proxy; the location
// table holds the alias and the Path, and an OPTIONS sent from the
// internet to alice reaches sipp through registrar, proxy and NAT, and
// sipp's 200 OK comes back the same way.
func TestLabNATProxy(t *testing.T) {
	t.Parallel()
	for _, kind := range []netlab.Kind{netlab.EIMAPDF, netlab.APDM} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{Kind: kind})
			netlab.RequireTools(t, "kamailio", "kamcmd", "sipp")
			rpc := startRegistrar(t, lab, netlab.Server2)

			self := netip.AddrPortFrom(netlab.Server2, 5060)
			conn := lab.ListenUDP(netlab.WAN, self)
			p, err := NewProxy(Config{Conn: conn, Self: self, Upstream: netip.AddrPortFrom(netlab.Server1, 5060), Ping: time.Second})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- p.Serve(ctx) }()
			t.Cleanup(func() { cancel(); <-served })

			wd, err := os.Getwd()
			require.NoError(t, err)
			reg, err := lab.Command(netlab.LAN, "sipp", self.String(), "-sf", filepath.Join(wd, "testdata", "register.xml"),
				"-s", "alice", "-m", "1", "-i", netlab.Client.String(), "-p", "5070", "-nostdin", "-timeout", "15s", "-timeout_error").CombinedOutput()
			require.NoError(t, err, "sipp REGISTER: %s", reg)
			dump := rpc("ul.dump")
			require.Contains(t, dump, "Address: sip:alice@192.168.1.10:5070;alias=203.0.113.1~", dump)
			require.Regexp(t, `Path: <sip:[A-Za-z0-9_-]+@203\.0\.113\.3:5060;lr>`, dump, "a flow token in Path")

			// alice (sipp as UAS on the same port, so the same NAT binding)
			// waits for a request
			sipp := lab.Start(netlab.LAN, "sipp", "-sf", filepath.Join(wd, "testdata", "answer.xml"),
				"-m", "1", "-i", netlab.Client.String(), "-p", "5070", "-nostdin", "-timeout", "20s", "-timeout_error")

			// the internet calls alice
			final := call(t, lab, "alice", "np-"+string(kind))
			require.Equal(t, 200, final.StatusCode(), "%s", final.Bytes())
			to, _ := final.Get(sipmsg.HdrTo)
			require.Contains(t, string(to), "alice", "the answer came from sipp")
			select {
			case <-sipp.Done():
				require.NoError(t, sipp.Wait(), sipp.Output())
			case <-time.After(10 * time.Second):
				t.Fatal("sipp did not finish")
			}

			// control: bob registers straight to the registrar, without
			// the proxy; it stores his private Contact and cannot reach him
			reg, err = lab.Command(netlab.LAN, "sipp", "203.0.113.2:5060", "-sf", filepath.Join(wd, "testdata", "register.xml"),
				"-s", "bob", "-m", "1", "-i", netlab.Client.String(), "-p", "5071", "-nostdin", "-timeout", "15s", "-timeout_error").CombinedOutput()
			require.NoError(t, err, "sipp REGISTER: %s", reg)
			require.Contains(t, rpc("ul.dump"), "Address: sip:bob@192.168.1.10:5071\n")
			final = call(t, lab, "bob", "direct-"+string(kind))
			require.NotEqual(t, 200, final.StatusCode(), "%s", final.Bytes())
			t.Logf("without natproxy: %d %s", final.StatusCode(), final.Reason())
		})
	}
}
