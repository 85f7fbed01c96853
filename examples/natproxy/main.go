// Command natproxy is a small stateless SIP edge proxy that does for a
// registrar without NAT support what Kamailio's nathelper does: it fixes
// Via (received/rport), detects NATed UAs (nat_uac_test 19), adds a
// Contact alias (or rewrites the Contact), adds Path to REGISTERs and
// Record-Route to dialogs so that requests for the UA come back through it,
// restores the alias when they do, and keeps NATed bindings open with CRLF
// pings. It relays signalling only; media relay is out of scope. It drops
// what it must not forward: octets after a datagram's Content-Length,
// messages sipmsg.Message.Check refuses (another SIP version, a Request-URI
// in <>...), and requests whose alias or Request-URI names loopback, the
// proxy, upstream or a private range not listed in -allow.
//
//	natproxy -listen 203.0.113.3:5060 -upstream 203.0.113.2:5060
//
// It is an example built on sipmsg and keepalive, not a product: no TCP,
// no TLS, no authentication of its own, no DNS.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	listen := flag.String("listen", "0.0.0.0:5060", "UDP address to receive on")
	advertise := flag.String("advertise", "", "address:port put in Via, Path and Record-Route (default: -listen)")
	upstream := flag.String("upstream", "", "registrar/proxy address:port (required)")
	rewrite := flag.Bool("rewrite", false, "rewrite Contact to the source (fix_nated_contact) instead of adding ;alias")
	ping := flag.Duration("ping", 20*time.Second, "CRLF ping interval for NATed contacts (0: off)")
	verbose := flag.Bool("v", false, "log every request")
	allow := flag.String("allow", "", "comma-separated private prefixes requests may be sent to (default: public addresses only)")
	flag.Parse()
	if err := run(*listen, *advertise, *upstream, *allow, *rewrite, *ping, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "natproxy:", err)
		os.Exit(1)
	}
}

func run(listen, advertise, upstream, allow string, rewrite bool, ping time.Duration, verbose bool) error {
	up, err := netip.ParseAddrPort(upstream)
	if err != nil {
		return fmt.Errorf("-upstream: %w", err)
	}
	var prefixes []netip.Prefix
	for _, f := range strings.FieldsFunc(allow, func(r rune) bool { return r == ',' }) {
		pr, err := netip.ParsePrefix(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("-allow: %w", err)
		}
		prefixes = append(prefixes, pr)
	}
	if advertise == "" {
		advertise = listen
	}
	self, err := netip.ParseAddrPort(advertise)
	if err != nil || self.Addr().IsUnspecified() {
		return fmt.Errorf("-advertise %q: need a concrete address:port", advertise)
	}
	conn, err := net.ListenPacket("udp", listen)
	if err != nil {
		return err
	}
	defer conn.Close()
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	p, err := NewProxy(Config{Conn: conn, Self: self, Upstream: up, Rewrite: rewrite, Ping: ping, Logger: log, Allow: prefixes})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("natproxy: %s -> %s (contact %s)\n", self, up, map[bool]string{false: "alias", true: "rewrite"}[rewrite])
	return p.Serve(ctx)
}
