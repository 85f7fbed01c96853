// Command natcheck tells what NAT the machine is behind and what that means
// for SIP: public address, mapping and filtering behaviour (RFC 4787/5780),
// the RFC 3489 type, hairpinning, binding lifetime, CGNAT, and a verdict on
// Contact, rport and media relays.
//
// With no flags it works offline: it starts the sipnat STUN server on
// 127.0.0.1 and 127.0.0.2 (both on lo on Linux) and checks against that,
// which reports "no NAT". Point it at a real RFC 5780 server to check the
// real network:
//
//	go run ./examples/natcheck
//	go run ./examples/natcheck -server stun.example.net:3478 -lifetime 2m
//	go run ./examples/natcheck -server stun.example.net:3478 -json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/sipnat/sipnat/nat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "natcheck:", err)
		os.Exit(1)
	}
}

// run is main without the process: flags from args, the report to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "STUN `host:port` list, comma-separated (default: an embedded server on 127.0.0.1/127.0.0.2)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	timeout := fs.Duration("timeout", 15*time.Second, "give up after this long")
	lifetime := fs.Duration("lifetime", 0, "measure the binding lifetime with idle times up to this long (0: do not)")
	local := fs.String("local", "0.0.0.0:0", "local UDP `address` to test (e.g. the SIP port)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout+*lifetime)
	defer cancel()

	var servers []netip.AddrPort
	if *server == "" {
		srv, addr, err := embeddedServer()
		if err != nil {
			return fmt.Errorf("embedded server: %w", err)
		}
		defer srv.Close()
		servers = append(servers, addr)
		if *local == "0.0.0.0:0" {
			*local = "127.0.0.1:0"
		}
	} else {
		for _, s := range strings.Split(*server, ",") {
			ap, err := resolve(ctx, strings.TrimSpace(s))
			if err != nil {
				return err
			}
			servers = append(servers, ap)
		}
	}
	// The socket's family follows the first server: an IPv6 server needs an
	// IPv6 socket (a firewall, not a NAT, is then what filters).
	network := "udp4"
	if servers[0].Addr().Is6() {
		network = "udp6"
		if *local == "0.0.0.0:0" {
			*local = "[::]:0"
		}
	}
	laddr, err := netip.ParseAddrPort(*local)
	if err != nil {
		return fmt.Errorf("-local: %w", err)
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(laddr))
	if err != nil {
		return err
	}
	defer conn.Close()

	res, err := nat.DiscoverWith(ctx, conn, nat.DiscoverConfig{Servers: servers, LifetimeMax: *lifetime})
	if res == nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil {
			return jerr
		}
	} else {
		fmt.Fprint(stdout, res)
	}
	return err
}

// resolve turns host:port into an IPv4 address and port.
func resolve(ctx context.Context, hostport string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("-server %q: %w", hostport, err)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %s: %w", host, errors.Join(err, errors.New("no IPv4 address")))
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("-server %q: port: %w", hostport, err)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(p)), nil
}

// embeddedServer starts a full RFC 5780 server on 127.0.0.1 and 127.0.0.2
// (primary and alternate port on each) and returns it with its primary
// address. Closing it stops it and closes the sockets.
func embeddedServer() (*closer, netip.AddrPort, error) {
	lo1, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	listen := func(a netip.Addr, port uint16) (*net.UDPConn, error) {
		return net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, port)))
	}
	var lastErr error
	for range 20 { // the ports picked on 127.0.0.1 may be taken on 127.0.0.2
		var conns []*net.UDPConn
		closeAll := func() {
			for _, c := range conns {
				c.Close()
			}
		}
		p, err := listen(lo1, 0)
		if err != nil {
			return nil, netip.AddrPort{}, err
		}
		conns = append(conns, p)
		ap, err := listen(lo1, 0)
		if err != nil {
			closeAll()
			return nil, netip.AddrPort{}, err
		}
		conns = append(conns, ap)
		pp, altp := p.LocalAddr().(*net.UDPAddr).AddrPort().Port(), ap.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		aa, err1 := listen(lo2, pp)
		if err1 == nil {
			conns = append(conns, aa)
		}
		ab, err2 := listen(lo2, altp)
		if err2 == nil {
			conns = append(conns, ab)
		}
		if err1 != nil || err2 != nil {
			lastErr = errors.Join(err1, err2)
			closeAll()
			continue
		}
		srv, err := nat.NewServer(nat.ServerConfig{Primary: p, AltPort: ap, AltAddr: aa, AltBoth: ab})
		if err != nil {
			closeAll()
			return nil, netip.AddrPort{}, err
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(context.Background()) }()
		c := &closer{f: func() {
			srv.Close()
			<-done
			closeAll()
		}}
		return c, netip.AddrPortFrom(lo1, pp), nil
	}
	return nil, netip.AddrPort{}, fmt.Errorf("no free ports on 127.0.0.1 and 127.0.0.2: %w", lastErr)
}

type closer struct{ f func() }

func (c *closer) Close() { c.f() }
