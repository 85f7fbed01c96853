// Command softphone is a small SIP user agent: REGISTER with digest
// authentication, INVITE answered with RTP, BYE. Everything about NAT is
// sipnat's agent package: the read loops hand packets to the agent first,
// the agent's Plan gives the Contact, Via sent-by and SDP addresses, keeps
// the flow to the registrar open, and its events say when to register
// again. With -turn, media goes through a TURN relay where nothing direct
// works (or always, with -force-relay).
//
// With -transport tcp or tls its SIP runs over an RFC 5626 flow to the
// registrar (sipnat's outbound package: its own connection, CRLF
// keep-alives at the registrar's Flow-Timer, a new flow when one fails, the
// registrar's TLS certificate checked against -ca); media stays on UDP, or,
// where UDP is blocked, goes through the TURN relay reached over TCP (or
// TLS, with -turn-transport tls).
//
// With -dual host:port (the registrar in the other address family) it is
// dual-stack: an agent per family (agent.DualStack), the registration over
// IPv6 where that works, and each call's media family chosen by
// agent.ChooseFamily; -stun may then name servers of both families.
//
// It is an example, not a product: one call at a time, PCMU silence as
// audio, MD5 digest authentication.
//
//	go run ./examples/softphone -registrar 203.0.113.2:5060 -user alice -password secret \
//	    -stun 203.0.113.2:3478 -turn 203.0.113.2:3490 -turn-user alice -turn-password secret
//	go run ./examples/softphone -registrar sip.example.com:5061 -transport tls -ca ca.pem ...
package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/internal/cmdline"
	"github.com/sipnat/sipnat/sipmsg"
	"github.com/sipnat/sipnat/turn"
)

const description = `softphone is a small SIP user agent built on sipnat's agent: it registers
to -registrar, keeps its NAT binding open, re-registers when its public
address moves, and answers calls with two-way RTP (PCMU silence), saying
before any call whether incoming calls and two-way audio will work. With
-dual it is dual-stack: the agent picks the family of the registration and
of each call's media (IPv6 where that path works and the peer has it).`

func main() { cmdline.Main("softphone", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdline.NewFlagSet("softphone", description, stderr)
	registrar := fs.String("registrar", "", "registrar `host:port` (required)")
	domain := fs.String("domain", "", "AoR domain (default: the registrar's address)")
	user := fs.String("user", "alice", "AoR user")
	password := fs.String("password", "", "digest password")
	stunList := fs.String("stun", "", "STUN servers, comma-separated `host:port` list (default: the registrar's host, port 3478); with -dual, those of each family serve that family's agent (default: its registrar's host, port 3478)")
	allow := fs.String("allow", "stun,mapping,rport", "NAT mechanisms to use: any of stun, mapping, rport")
	sipPort := fs.Uint("sip-port", 5062, "local SIP port (1-65535)")
	rtpPort := fs.Uint("rtp-port", 40000, "local RTP port (1-65535)")
	lifetime := fs.Duration("lifetime-max", 40*time.Second, "measure the NAT binding lifetime up to this (0: skip; the keep-alive interval is then assumed)")
	dual := fs.String("dual", "", "the registrar's `host:port` in the other address family: a dual-stack phone, registering over IPv6 where that works and picking each call's media family (STUN on that host's port 3478)")
	jsonOut := fs.Bool("json", false, "print the plan and final counters as JSON")
	turnSrv := fs.String("turn", "", "TURN server `host:port` that relays media where nothing direct works (its TLS port with -turn-transport tls)")
	turnTransport := fs.String("turn-transport", "", "how the TURN server is reached: udp, tcp or tls (default: udp, or tcp when UDP is blocked); tls checks its certificate against -ca")
	turnKeep := fs.Duration("turn-keepalive", 0, "TCP/TLS relay: keep its connection open this often, below the NAT's idle-TCP timeout (0: 25 s)")
	turnUser := fs.String("turn-user", "", "TURN username (long-term credentials)")
	turnPass := fs.String("turn-password", "", "TURN password")
	force := fs.Bool("force-relay", false, "relay media through the TURN server even where a direct path works")
	transport := fs.String("transport", "udp", "SIP transport to the registrar: udp, tcp or tls")
	caFile := fs.String("ca", "", "TLS: PEM `file` of the CA certificates to check the registrar's and the TURN server's against (default: the system's)")
	serverName := fs.String("server-name", "", "TLS: the name the registrar's certificate must carry (default: the -registrar host)")
	streamLifetime := fs.Duration("stream-lifetime-max", 0, "TCP/TLS: measure how long the NAT keeps an idle connection, up to this, and keep the flow at half of it (0: skip; the registrar's Flow-Timer or 96-120 s)")
	if err := cmdline.Parse(fs, args); err != nil {
		return err
	}
	if *registrar == "" {
		return cmdline.Usagef("-registrar is required")
	}
	for name, port := range map[string]uint{"-sip-port": *sipPort, "-rtp-port": *rtpPort} {
		if port == 0 || port > 65535 {
			return cmdline.Usagef("%s %d: want 1-65535 (port 0 would be advertised)", name, port)
		}
	}
	reg, err := resolve(*registrar)
	if err != nil {
		return cmdline.Usagef("-registrar %q: %v", *registrar, err)
	}
	allowed, err := agent.ParseMechanisms(*allow)
	if err != nil {
		return cmdline.Usagef("-allow: %v", err)
	}
	cfg := Config{Registrar: reg, Domain: *domain, User: *user, Password: *password, LifetimeMax: *lifetime, Out: stdout,
		Disable: (agent.STUN | agent.PortMapping | agent.Rport) &^ allowed, ForceRelay: *force,
		TURN: turn.Config{Username: *turnUser, Password: *turnPass}}
	if *turnSrv != "" {
		if cfg.TURN.Server, err = resolve(*turnSrv); err != nil {
			return cmdline.Usagef("-turn %q: %v", *turnSrv, err)
		}
	}
	if *force && *turnSrv == "" {
		return cmdline.Usagef("-force-relay needs -turn")
	}
	switch strings.ToLower(*turnTransport) {
	case "":
	case "udp", "tcp", "tls":
		cfg.TURNTransport = sipmsg.ParseTransport([]byte(*turnTransport))
		cfg.TURNServerName, _, _ = net.SplitHostPort(*turnSrv)
	default:
		return cmdline.Usagef("-turn-transport %q: want udp, tcp or tls", *turnTransport)
	}
	if *turnKeep < 0 {
		return cmdline.Usagef("-turn-keepalive %v: want a positive duration", *turnKeep)
	}
	cfg.TURNKeepAlive = *turnKeep
	if *jsonOut {
		cfg.Out = nil
	}
	var stun []netip.AddrPort
	for _, s := range strings.Split(*stunList, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := resolve(s)
		if err != nil {
			return cmdline.Usagef("-stun %q: %v", s, err)
		}
		stun = append(stun, a)
	}
	roots, err := readCA(*caFile)
	if err != nil {
		return err
	}
	cfg.TURNRootCAs = roots
	switch strings.ToLower(*transport) {
	case "udp":
	case "tcp", "tls":
		sc := &StreamConfig{Transport: sipmsg.ParseTransport([]byte(*transport)), Server: reg, ServerName: *serverName, LifetimeMax: *streamLifetime}
		if sc.ServerName == "" {
			sc.ServerName, _, _ = net.SplitHostPort(*registrar)
		}
		sc.RootCAs = roots
		cfg.Stream = sc
	default:
		return cmdline.Usagef("-transport %q: want udp, tcp or tls", *transport)
	}
	var dualReg netip.AddrPort
	if *dual != "" {
		other := agent.IPv6 // the -dual registrar's family
		if agent.FamilyOf(reg.Addr()) == agent.IPv6 {
			other = agent.IPv4
		}
		if dualReg, err = resolveIn(*dual, udpNetwork(other)); err != nil {
			return cmdline.Usagef("-dual %q: %v", *dual, err)
		}
		if agent.FamilyOf(dualReg.Addr()) == agent.FamilyOf(reg.Addr()) {
			return cmdline.Usagef("-dual %s: in the same address family as -registrar %s; want the other one", dualReg, reg)
		}
	}
	cfg.STUN = stunFor(stun, reg)
	sip, rtp, err := listenTowards(reg, uint16(*sipPort), uint16(*rtpPort))
	if err != nil {
		return err
	}
	defer sip.Close()
	defer rtp.Close()
	if dualReg.IsValid() {
		sip2, rtp2, err := listenTowards(dualReg, uint16(*sipPort), uint16(*rtpPort))
		if err != nil {
			return fmt.Errorf("-dual: %w", err)
		}
		defer sip2.Close()
		defer rtp2.Close()
		cfg.Dual = &DualConfig{SIP: sip2, RTP: rtp2, Registrar: dualReg,
			STUN: stunFor(stun, dualReg)}
	}

	p, err := NewPhone(sip, rtp, cfg)
	if err != nil {
		return err
	}
	err = p.Run(ctx)
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(struct {
			Plan  *agent.Plan     `json:"plan"`
			Dual  *agent.DualPlan `json:"dual,omitempty"` // with -dual: both families and the registration's choice
			Stats Stats           `json:"stats"`
		}{p.Plan(), p.DualPlan(), p.Stats()}); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

// stunFor returns the STUN servers of list in registrar's family, or, when
// none is, the registrar's host on port 3478 ([v6]:3478 for an IPv6 one):
// the agent's STUN runs on its SIP socket, of the registrar's family.
func stunFor(list []netip.AddrPort, registrar netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range list {
		if agent.FamilyOf(a.Addr()) == agent.FamilyOf(registrar.Addr()) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return []netip.AddrPort{netip.AddrPortFrom(registrar.Addr(), 3478)}
	}
	return out
}

// udpNetwork is the network name of UDP in family f ("udp4", "udp6").
func udpNetwork(f agent.Family) string {
	if f == agent.IPv6 {
		return "udp6"
	}
	return "udp4"
}

// listenTowards opens the SIP and RTP sockets on the local address that
// routes to dst, in dst's family.
func listenTowards(dst netip.AddrPort, sipPort, rtpPort uint16) (sip, rtp *net.UDPConn, err error) {
	local, err := localAddrTowards(dst)
	if err != nil {
		return nil, nil, fmt.Errorf("no route to the registrar %s: %w", dst, err)
	}
	network := udpNetwork(agent.FamilyOf(local))
	if sip, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, sipPort))); err != nil {
		return nil, nil, err
	}
	if rtp, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, rtpPort))); err != nil {
		sip.Close()
		return nil, nil, err
	}
	return sip, rtp, nil
}

// readCA reads the -ca file: nil (the system's roots) when none is named.
func readCA(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("-ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, cmdline.Usagef("-ca %s: no PEM certificate in it", file)
	}
	return roots, nil
}

func resolve(hostport string) (netip.AddrPort, error) { return resolveIn(hostport, "udp4") }

// resolveIn resolves hostport in network's family ("udp4", "udp6"); an
// address literal is taken as it is.
func resolveIn(hostport, network string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap, nil
	}
	ua, err := net.ResolveUDPAddr(network, hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// localAddrTowards returns the local address routing picks for dst (a UDP
// "connect" sends nothing).
func localAddrTowards(dst netip.AddrPort) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}
