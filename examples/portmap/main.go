// Command portmap asks the home gateway to forward a public port to this
// host over whatever it speaks (PCP, NAT-PMP or UPnP IGD), prints the public
// address, keeps the lease renewed until interrupted, and removes the
// mapping on exit.
//
//	portmap -port 5060                 # UDP 5060, any protocol
//	portmap -port 5060 -proto upnp     # only UPnP IGD
//	portmap -port 5060 -json           # one JSON object per line
//	portmap -probe                     # only say what the gateway speaks
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/sipnat/sipnat/discovery"
	"github.com/sipnat/sipnat/internal/cmdline"
)

const description = `portmap asks the home gateway to forward a public port to this host over
whatever it speaks (PCP, NAT-PMP or UPnP IGD), prints the public address,
keeps the lease renewed until interrupted, and removes the mapping on exit.
-probe only says what the gateway speaks.`

func main() { cmdline.Main("portmap", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cmdline.NewFlagSet("portmap", description, stderr)
	port := fs.Uint("port", 5060, "internal port to map (1-65535)")
	network := fs.String("net", "udp", "udp or tcp")
	proto := fs.String("proto", "", "comma-separated protocols to use, in order: pcp,natpmp,upnp (default all)")
	gw := fs.String("gateway", "", "gateway address (default: the default gateway)")
	lifetime := fs.Duration("lifetime", 2*time.Hour, "lease to ask for")
	probeOnly := fs.Bool("probe", false, "only probe the gateway and exit")
	asJSON := fs.Bool("json", false, "print JSON")
	verbose := fs.Bool("v", false, "log debug records to stderr")
	if err := cmdline.Parse(fs, args); err != nil {
		return err
	}
	if *port == 0 || *port > 65535 {
		return cmdline.Usagef("-port %d: want 1-65535", *port)
	}
	if *network != "udp" && *network != "tcp" {
		return cmdline.Usagef("-net %q: want udp or tcp", *network)
	}
	cfg := discovery.MapperConfig{Lifetime: *lifetime}
	if *gw != "" {
		a, err := netip.ParseAddr(*gw)
		if err != nil {
			return cmdline.Usagef("-gateway %q: %v", *gw, err)
		}
		cfg.Gateway = a
	}
	if *proto != "" {
		for _, s := range strings.Split(*proto, ",") {
			p, err := discovery.ParseProtocol(strings.TrimSpace(s))
			if err != nil {
				return cmdline.Usagef("-proto: %v", err)
			}
			cfg.Protocols = append(cfg.Protocols, p)
		}
	}
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	out := printer{json: *asJSON, w: stdout}
	cfg.OnEvent = func(e discovery.Event) { out.event(e) }

	m := discovery.NewMapper(cfg)
	defer func() {
		if err := m.Close(); err != nil {
			fmt.Fprintln(stderr, "portmap: removing the mapping:", err)
		}
	}()

	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if *probeOnly {
		r, err := m.Probe(pctx)
		out.probe(r)
		return err
	}
	mp, err := m.Map(pctx, *network, uint16(*port))
	if err != nil {
		return err
	}
	out.mapping(mp)
	<-ctx.Done()
	return nil
}

type printer struct {
	json bool
	w    io.Writer
}

func (p printer) emit(v any, text string) {
	if p.json {
		b, _ := json.Marshal(v)
		fmt.Fprintln(p.w, string(b))
		return
	}
	fmt.Fprintln(p.w, text)
}

func (p printer) probe(r discovery.ProbeResult) { p.emit(r, r.String()) }

func (p printer) mapping(m discovery.Mapping) {
	p.emit(struct {
		Public  netip.AddrPort    `json:"public"`
		Mapping discovery.Mapping `json:"mapping"`
	}{m.External, m}, fmt.Sprintf("public address %s\n%s\nrenewing until interrupted (Ctrl-C removes the mapping)", m.External, m))
}

func (p printer) event(e discovery.Event) {
	if e.Kind == discovery.EventMapped && e.Mapping.Renewals == 0 {
		return // printed by mapping
	}
	p.emit(struct {
		Event discovery.Event `json:"event"`
		Error string          `json:"error,omitempty"`
	}{e, errString(e.Err)}, e.String())
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
