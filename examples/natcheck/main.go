package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sipnat/sipnat/internal/cmdline"
	"github.com/sipnat/sipnat/nat"
)

const description = `natcheck tells what NAT this machine is behind and what that means for SIP.
It reports only what it tested: UDP reachability and the public address per
STUN server (with round-trip times), the mapping and filtering behaviour
(RFC 4787/5780), hairpinning, port preservation, the binding lifetime
(-lifetime), the gateway's port mapping (UPnP IGD, NAT-PMP, PCP: a test
mapping is made and deleted), CGNAT and double NAT (the gateway's external
address against STUN), IPv6, and the SIP verdict: where a UA's Contact comes
from, its keep-alive interval, and whether media needs a relay.
Without -server it runs a self-test against its own STUN server on
127.0.0.1/127.0.0.2, which says nothing about the network.`

func main() { cmdline.Main("natcheck", run) }

// run is main without the process: flags from args, the report to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdline.NewFlagSet("natcheck", description, stderr)
	var servers []string
	fs.Func("server", "STUN server `host:port`; repeat or comma-separate for several (IPv6 ones test the IPv6 line)", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				servers = append(servers, f)
			}
		}
		return nil
	})
	asJSON := fs.Bool("json", false, "print the report as JSON (durations in milliseconds)")
	timeout := fs.Duration("timeout", 15*time.Second, "give up after this long (plus -lifetime)")
	lifetime := fs.Duration("lifetime", 0, "measure the binding lifetime with idle times up to this long (0: do not)")
	local := fs.String("local", "0.0.0.0:0", "local UDP `address` to test (e.g. the SIP port)")
	portMap := fs.Bool("portmap", true, "ask the gateway for a test port mapping (UPnP IGD, NAT-PMP, PCP)")
	gateway := fs.String("gateway", "", "gateway `address` for port mapping (default: the default gateway)")
	if err := cmdline.Parse(fs, args); err != nil {
		return err
	}
	laddr, err := netip.ParseAddrPort(*local)
	if err != nil {
		return cmdline.Usagef("-local %q: %v", *local, err)
	}
	o := options{local: laddr, lifetime: *lifetime, portMap: *portMap, hostAddrs: nat.HostAddrs}
	if *gateway != "" {
		if o.gateway, err = netip.ParseAddr(*gateway); err != nil {
			return cmdline.Usagef("-gateway %q: %v", *gateway, err)
		}
	}
	if *timeout <= 0 {
		return cmdline.Usagef("-timeout %v: must be positive", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout+*lifetime)
	defer cancel()

	if len(servers) == 0 {
		srv, addr, err := embeddedServer()
		if err != nil {
			return fmt.Errorf("self-test server: %w", err)
		}
		defer srv.Close()
		o.selfTest = true
		o.servers, o.names = []netip.AddrPort{addr}, []string{addr.String() + " (self-test)"}
		if laddr.Addr().IsUnspecified() {
			o.local = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), laddr.Port())
		}
	}
	for _, s := range servers {
		ap, err := resolve(ctx, s)
		if err != nil {
			return cmdline.Usagef("-server %q: %v", s, err)
		}
		o.servers, o.names = append(o.servers, ap), append(o.names, s)
	}
	rep, err := check(ctx, o)
	if rep == nil {
		return err
	}
	if *asJSON {
		if jerr := rep.writeJSON(stdout); jerr != nil {
			return errors.Join(err, jerr)
		}
	} else {
		rep.writeText(stdout)
	}
	return err
}

// resolve turns host:port into an address and port (IPv4 preferred).
func resolve(ctx context.Context, hostport string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, errors.New("port 0")
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("port %q: want 1-65535", port)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
		}
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: no address", host)
	}
	return netip.AddrPortFrom(ips[0], uint16(p)), nil
}
