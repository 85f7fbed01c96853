// Command softphone is a small SIP user agent built from sipnat's packages,
// the way a softphone or an ATA firmware composes them: one UDP socket for
// SIP and STUN; nat.Discover decides the strategy; discovery maps ports
// where the gateway allows; Contact and SDP carry the public address (from
// the mapping, STUN, or the registrar's received/rport); OPTIONS keep-alives
// at the interval the measured binding lifetime implies; re-registration
// when the public address changes; calls answered with symmetric RTP.
//
// It is an example, not a product: one call at a time, PCMU silence as
// audio, UDP only, MD5 digest authentication.
//
//	go run ./examples/softphone -registrar 203.0.113.2:5060 -user alice -password secret \
//	    -stun 203.0.113.2:3478
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	var (
		registrar = flag.String("registrar", "", "registrar host:port (required)")
		domain    = flag.String("domain", "", "AoR domain (default: the registrar's address)")
		user      = flag.String("user", "alice", "AoR user")
		password  = flag.String("password", "", "digest password")
		stun      = flag.String("stun", "", "STUN servers, comma-separated host:port (default: the registrar's host, port 3478)")
		allow     = flag.String("allow", "stun,mapping,rport", "NAT mechanisms to use: any of stun, mapping, rport")
		sipPort   = flag.Int("sip-port", 5062, "local SIP port")
		rtpPort   = flag.Int("rtp-port", 40000, "local RTP port")
		lifetime  = flag.Duration("lifetime-max", 40*time.Second, "measure the NAT binding lifetime up to this (0: skip, keep-alive every 25 s)")
		jsonOut   = flag.Bool("json", false, "print the strategy and final counters as JSON")
	)
	flag.Parse()
	if err := run(*registrar, *domain, *user, *password, *stun, *allow, *sipPort, *rtpPort, *lifetime, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "softphone:", err)
		os.Exit(1)
	}
}

func run(registrar, domain, user, password, stunList, allow string, sipPort, rtpPort int, lifetime time.Duration, jsonOut bool) error {
	reg, err := resolve(registrar)
	if err != nil {
		return fmt.Errorf("-registrar: %w", err)
	}
	cfg := Config{Registrar: reg, Domain: domain, User: user, Password: password, LifetimeMax: lifetime, Out: os.Stdout}
	if jsonOut {
		cfg.Out = nil
	}
	if stunList == "" {
		stunList = reg.Addr().String() + ":3478"
	}
	for _, s := range strings.Split(stunList, ",") {
		a, err := resolve(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-stun: %w", err)
		}
		cfg.STUN = append(cfg.STUN, a)
	}
	for _, m := range strings.Split(allow, ",") {
		switch strings.TrimSpace(m) {
		case "stun":
			cfg.Allow.STUN = true
		case "mapping":
			cfg.Allow.Mapping = true
		case "rport":
			cfg.Allow.Rport = true
		case "":
		default:
			return fmt.Errorf("-allow: unknown mechanism %q", m)
		}
	}
	local, err := localAddrTowards(reg)
	if err != nil {
		return err
	}
	sip, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, uint16(sipPort))))
	if err != nil {
		return err
	}
	defer sip.Close()
	rtp, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, uint16(rtpPort))))
	if err != nil {
		return err
	}
	defer rtp.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	p := NewPhone(sip, rtp, cfg)
	err = p.Run(ctx)
	if jsonOut {
		out, _ := json.MarshalIndent(struct {
			Strategy *Strategy `json:"strategy"`
			Stats    Stats     `json:"stats"`
		}{p.Strategy(), p.Stats()}, "", "  ")
		fmt.Println(string(out))
	}
	return err
}

func resolve(hostport string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap, nil
	}
	ua, err := net.ResolveUDPAddr("udp4", hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// localAddrTowards returns the local address routing picks for dst (a UDP
// "connect" sends nothing).
func localAddrTowards(dst netip.AddrPort) (netip.Addr, error) {
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}
