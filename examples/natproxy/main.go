// Command natproxy is a small stateless SIP edge proxy that does for a
// registrar without NAT support what Kamailio's nathelper does: it fixes
// Via (received/rport), detects NATed UAs (nat_uac_test 19), adds a
// Contact alias (or rewrites the Contact), adds Path to REGISTERs and
// Record-Route to dialogs so that requests for the UA come back through it,
// restores the alias when they do, and keeps NATed bindings open with CRLF
// pings. With -rtpengine it relays the media of calls with a party behind
// NAT through a set of rtpengine instances (a call stays on one; a new call
// fails over to the next when one does not answer) and leaves calls between
// public peers alone (-rtpengine-all relays those too); without it, or
// when no rtpengine answers, it relays signalling only and rewrites private
// SDP addresses.
//
// It drops what it must not forward:
//   - octets after a datagram's Content-Length;
//   - messages sipmsg.Message.Check refuses (another SIP version, a
//     Request-URI in <>...);
//   - requests whose alias or Request-URI names loopback, the proxy,
//     upstream or a private range not listed in -allow (with -alias-key,
//     any alias it did not sign itself);
//   - responses whose top Via names it with a branch it did not sign
//     (-via-key; random per run by default): it forwards only responses to
//     requests it forwarded.
//
// With -rtpengine it refuses a CANCEL from another host than its INVITE,
// and ends a call's media on a stranger's BYE only when the far side
// answers it 2xx.
//
//	natproxy -listen 203.0.113.3:5060 -upstream 203.0.113.2:5060 -rtpengine 203.0.113.2:2223,203.0.113.2:2224
//
// It is also an RFC 5626 edge proxy (outbound.Edge): UAs reach it over UDP,
// TCP (-tcp) and TLS (-tls with -cert and -key); it answers CRLF pings and
// STUN on its SIP ports, puts a flow token in Path, sends -flow-timer in
// the REGISTER answers of outbound UAs, sends requests for a UA over the
// UA's own connection and answers 430 Flow Failed when it is gone. It
// holds at most -max-conns-per-source TCP and TLS connections open from one
// source (an IPv4 address or an IPv6 /64; by default 1000, a tenth of its
// 10000 in all): raise it for UAs behind a CGNAT.
//
//	natproxy -listen 203.0.113.3:5060 -upstream 203.0.113.2:5060 -tcp 203.0.113.3:5060 \
//	    -tls 203.0.113.3:5061 -cert cert.pem -key key.pem -flow-timer 25s
//
// With -dual it is dual-stack: it serves UAs of the other family on that
// socket too, with Via and Record-Route in each leg's family (a double
// Record-Route where a dialog crosses families). An IPv6 UA with a global
// address needs no fix (its Contact and SDP match its source) and is left
// alone; IPv4 UAs behind NAT get the usual one. Alone it cannot bridge
// media between the families: an IPv6 SDP sent to an IPv4 UA is logged as
// a warning (a dual-stack UA picks IPv4 media for an IPv4 peer itself);
// with -rtpengine, rtpengine writes each UA's SDP in its family and relays
// between them. The relay's offer is then made where the INVITE comes back
// from upstream to the callee, whose family is known there: calls between
// the proxy's own UAs are relayed, a call upstream sends elsewhere is not.
//
//	natproxy -listen 203.0.113.3:5060 -dual '[2001:db8:ff::3]:5060' -upstream 203.0.113.2:5060
//
// It is an example built on sipmsg, keepalive, outbound and
// rtpengine/sipedge, not a product:
// upstream over UDP only, no authentication of its own, no DNS.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/sipnat/sipnat/internal/cmdline"

	"github.com/sipnat/sipnat/rtpengine"
	"github.com/sipnat/sipnat/rtpengine/sipedge"
)

const description = `natproxy is a small SIP edge proxy in front of a registrar without NAT
support: it fixes Via (received/rport), adds a Contact alias or rewrites it,
adds Path and Record-Route, restores aliases, keeps NATed bindings open with
CRLF pings, relays media through rtpengine when asked (-rtpengine), and is an
RFC 5626 edge over UDP, TCP (-tcp) and TLS (-tls).`

func main() { cmdline.Main("natproxy", parse) }

// parse reads the flags and runs the proxy.
func parse(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flag := cmdline.NewFlagSet("natproxy", description, stderr)
	listen := flag.String("listen", "0.0.0.0:5060", "UDP address to receive on")
	advertise := flag.String("advertise", "", "address:port put in Via, Path and Record-Route (default: -listen)")
	upstream := flag.String("upstream", "", "registrar/proxy address:port (required)")
	rewrite := flag.Bool("rewrite", false, "rewrite Contact to the source (fix_nated_contact) instead of adding ;alias")
	ping := flag.Duration("ping", 20*time.Second, "CRLF ping interval for NATed contacts (0: off)")
	verbose := flag.Bool("v", false, "log every request")
	allow := flag.String("allow", "", "comma-separated private prefixes requests may be sent to (default: public addresses only)")
	var keys secrets
	flag.StringVar(&keys.alias, "alias-key", "", "secret that signs the Contact aliases the proxy writes; then only signed aliases are followed")
	flag.StringVar(&keys.via, "via-key", "", "secret that signs the branch of the proxy's Via (and the media relay's Via marks), so that only responses to requests it forwarded pass (shared by proxies at one address; default: random per run)")
	var md media
	flag.StringVar(&md.rtpengine, "rtpengine", "", "rtpengine ng addresses host:port[,host:port...] relaying the media of NATed calls (default: none)")
	flag.BoolVar(&md.all, "rtpengine-all", false, "relay every call, NATed or not (where SIP ALGs hide NATs)")
	var st streams
	flag.StringVar(&st.tcp, "tcp", "", "TCP address to accept UAs on (default: none)")
	flag.StringVar(&st.tls, "tls", "", "TLS address to accept UAs on (needs -cert and -key)")
	flag.StringVar(&st.cert, "cert", "", "TLS certificate (PEM)")
	flag.StringVar(&st.key, "key", "", "TLS key (PEM)")
	flag.DurationVar(&st.flowTimer, "flow-timer", 25*time.Second, "RFC 5626 Flow-Timer sent to outbound UAs (0: none)")
	flag.IntVar(&st.maxPerSource, "max-conns-per-source", 0, "TCP and TLS connections open at once from one source, an IPv4 address or IPv6 /64 (0: 1000, a tenth of the 10000 in all; raise it for UAs behind a CGNAT)")
	flag.StringVar(&st.dual, "dual", "", "UDP address in the other family to serve UAs on too (a dual-stack proxy; -listen must be in -upstream's family)")
	flag.StringVar(&st.dualAdvertise, "advertise-dual", "", "address:port of the other family put in Via and Record-Route (default: -dual)")
	if err := cmdline.Parse(flag, args); err != nil {
		return err
	}
	if *upstream == "" {
		return cmdline.Usagef("-upstream is required (the registrar's address:port)")
	}
	if st.maxPerSource < 0 {
		return cmdline.Usagef("-max-conns-per-source %d: want 0 (the default) or more", st.maxPerSource)
	}
	return run(ctx, stdout, stderr, *listen, *advertise, *upstream, *allow, keys, *rewrite, *ping, *verbose, md, st)
}

// secrets are the keys the proxy signs with (-alias-key, -via-key).
type secrets struct{ alias, via string }

// media are the media relay's flags.
type media struct {
	rtpengine string
	all       bool
}

// streams are the TCP and TLS flags.
type streams struct {
	tcp, tls, cert, key string
	flowTimer           time.Duration
	maxPerSource        int    // stream connections from one source (-max-conns-per-source)
	dual, dualAdvertise string // the other family's socket and address (-dual)
}

func run(ctx context.Context, stdout, stderr io.Writer, listen, advertise, upstream, allow string, keys secrets, rewrite bool, ping time.Duration, verbose bool, md media, st streams) error {
	up, err := netip.ParseAddrPort(upstream)
	if err != nil || up.Port() == 0 {
		return cmdline.Usagef("-upstream %q: want address:port", upstream)
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
	if err != nil || self.Addr().IsUnspecified() || self.Port() == 0 {
		return cmdline.Usagef("-advertise %q: need a concrete address and a port other than 0 (it goes into Via, Path and Record-Route)", advertise)
	}
	var altSelf netip.AddrPort
	if st.dual != "" {
		advertise := cmp.Or(st.dualAdvertise, st.dual)
		if altSelf, err = netip.ParseAddrPort(advertise); err != nil || altSelf.Addr().IsUnspecified() || altSelf.Port() == 0 {
			return cmdline.Usagef("-advertise-dual %q: need a concrete address and a port other than 0 (it goes into Via and Record-Route)", advertise)
		}
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
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var relay *sipedge.Relay
	if md.rtpengine != "" {
		instances, err := rtpengine.ParseInstances(md.rtpengine)
		if err != nil {
			return fmt.Errorf("-rtpengine: %w", err)
		}
		ng, err := net.ListenPacket("udp", ":0") // the ng control socket
		if err != nil {
			return err
		}
		defer ng.Close()
		client := rtpengine.NewClient(ng, rtpengine.ClientConfig{Logger: log})
		defer client.Close()
		set, err := rtpengine.NewSet(rtpengine.SetConfig{Client: client, Instances: instances, Logger: log})
		if err != nil {
			return err
		}
		rc := sipedge.Config{Set: set, Self: self, AltSelf: altSelf, All: md.all, Logger: log}
		if keys.via != "" {
			rc.Key = []byte(keys.via) // the relay's Via marks too: edges at one address share them
		}
		if relay, err = sipedge.New(rc); err != nil {
			return err
		}
	}
	cfg := Config{Conn: conn, Self: self, Upstream: up, Rewrite: rewrite, Ping: ping, Logger: log, Allow: prefixes, Relay: relay,
		FlowTimer: st.flowTimer, MaxConnsPerSource: st.maxPerSource}
	if keys.via != "" {
		cfg.ViaKey = []byte(keys.via)
	}
	if keys.alias != "" {
		cfg.AliasKey = []byte(keys.alias)
	}
	if st.dual != "" {
		cfg.AltSelf = altSelf
		if cfg.AltConn, err = net.ListenPacket("udp", st.dual); err != nil {
			return fmt.Errorf("-dual: %w", err)
		}
		defer cfg.AltConn.Close()
	}
	if st.tcp != "" {
		if cfg.TCP, err = net.Listen("tcp", st.tcp); err != nil {
			return fmt.Errorf("-tcp: %w", err)
		}
		defer cfg.TCP.Close()
	}
	if st.tls != "" {
		cert, err := tls.LoadX509KeyPair(st.cert, st.key)
		if err != nil {
			return fmt.Errorf("-cert/-key: %w", err)
		}
		cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cfg.TLS, err = net.Listen("tcp", st.tls); err != nil {
			return fmt.Errorf("-tls: %w", err)
		}
		defer cfg.TLS.Close()
	}
	p, err := NewProxy(cfg)
	if err != nil {
		return err
	}
	if cfg.AltConn != nil {
		fmt.Fprintf(stdout, "natproxy: dual-stack: UAs of the other family on %s\n", cfg.AltSelf)
	}
	for _, l := range []struct {
		name string
		ln   net.Listener
	}{{"TCP", cfg.TCP}, {"TLS", cfg.TLS}} {
		if l.ln != nil {
			fmt.Fprintf(stdout, "natproxy: %s on %s\n", l.name, l.ln.Addr())
		}
	}
	fmt.Fprintf(stdout, "natproxy: %s -> %s (contact %s, media relay %s)\n", self, up, map[bool]string{false: "alias", true: "rewrite"}[rewrite], cmp.Or(md.rtpengine, "none"))
	err = p.Serve(ctx)
	fmt.Fprintf(stdout, "natproxy: dropped %d responses with a Via branch it did not make, %d octets after Content-Length\n",
		p.ForeignResponses(), p.TrailingDropped())
	if relay != nil {
		st := relay.Stats()
		fmt.Fprintf(stdout, "natproxy: relay: %d offers, %d answers, %d deletes, %d public, %d failed (signalling only), %d forged, %d BYE/CANCEL not trusted at once (%d confirmed by a 2xx)\n",
			st.Offers, st.Answers, st.Deletes, st.Public, st.Failed, st.Forged, st.Refused, st.Confirmed)
	}
	return err
}
