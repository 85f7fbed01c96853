// Command sipgo is a SIP user agent built on github.com/emiago/sipgo, the
// Go SIP stack, with sipnat's agent doing the NAT part: the agent reads
// first on the socket sipgo serves, gives the Contact, Via sent-by and SDP
// addresses, keeps the flow to the registrar open and says when to register
// again; sipgo does REGISTER (with digest), INVITE, ACK and BYE.
//
// It is its own module, so the sipnat library does not depend on sipgo.
//
//	go run . -registrar 203.0.113.2:5060 -user alice -password secret -stun 203.0.113.2:3478
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/sipnat/sipnat/agent"
	"github.com/sipnat/sipnat/internal/cmdline"
)

const description = `sipgo is a SIP user agent on github.com/emiago/sipgo with sipnat's agent
doing the NAT part: it registers to -registrar, keeps its NAT binding open,
re-registers when its public address moves, and answers calls with RTP.`

func main() { cmdline.Main("sipgo", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdline.NewFlagSet("sipgo", description, stderr)
	registrar := fs.String("registrar", "", "registrar `address:port` (required)")
	user := fs.String("user", "alice", "AoR user")
	password := fs.String("password", "", "digest password")
	stunList := fs.String("stun", "", "STUN servers, comma-separated `address:port` list")
	sipPort := fs.Uint("sip-port", 5062, "local SIP port (1-65535)")
	rtpPort := fs.Uint("rtp-port", 40000, "local RTP port (1-65535)")
	lifetime := fs.Duration("lifetime-max", 40*time.Second, "measure the NAT binding lifetime up to this (0: skip)")
	jsonOut := fs.Bool("json", false, "print the plan as JSON when done")
	if err := cmdline.Parse(fs, args); err != nil {
		return err
	}
	reg, err := netip.ParseAddrPort(*registrar)
	if err != nil || reg.Port() == 0 {
		return cmdline.Usagef("-registrar %q: want address:port", *registrar)
	}
	for name, port := range map[string]uint{"-sip-port": *sipPort, "-rtp-port": *rtpPort} {
		if port == 0 || port > 65535 {
			return cmdline.Usagef("%s %d: want 1-65535", name, port)
		}
	}
	cfg := Config{Registrar: reg, User: *user, Password: *password, LifetimeMax: *lifetime, Out: stdout}
	for _, s := range strings.FieldsFunc(*stunList, func(r rune) bool { return r == ',' }) {
		a, err := netip.ParseAddrPort(strings.TrimSpace(s))
		if err != nil {
			return cmdline.Usagef("-stun %q: %v", s, err)
		}
		cfg.STUN = append(cfg.STUN, a)
	}
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(reg)) // routing picks the local address; sends nothing
	if err != nil {
		return fmt.Errorf("no route to the registrar %s: %w", reg, err)
	}
	local := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
	c.Close()
	sip, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, uint16(*sipPort))))
	if err != nil {
		return err
	}
	rtp, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, uint16(*rtpPort))))
	if err != nil {
		sip.Close()
		return err
	}
	p, err := NewPhone(sip, rtp, cfg)
	if err != nil {
		return err
	}
	err = p.Run(ctx) // closes the sockets when done
	if *jsonOut {
		out, _ := json.MarshalIndent(struct {
			Plan *agent.Plan `json:"plan"`
		}{p.Plan()}, "", "  ")
		fmt.Fprintln(stdout, string(out))
	}
	return err
}
