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
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sipnat/sipnat/discovery"
)

func main() {
	port := flag.Uint("port", 5060, "internal port to map")
	network := flag.String("net", "udp", "udp or tcp")
	proto := flag.String("proto", "", "comma-separated protocols to use, in order: pcp,natpmp,upnp (default all)")
	gw := flag.String("gateway", "", "gateway address (default: the default gateway)")
	lifetime := flag.Duration("lifetime", 2*time.Hour, "lease to ask for")
	probe := flag.Bool("probe", false, "only probe the gateway and exit")
	asJSON := flag.Bool("json", false, "print JSON")
	verbose := flag.Bool("v", false, "log debug records to stderr")
	flag.Parse()
	if err := run(*port, *network, *proto, *gw, *lifetime, *probe, *asJSON, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "portmap:", err)
		os.Exit(1)
	}
}

func run(port uint, network, protos, gw string, lifetime time.Duration, probeOnly, asJSON, verbose bool) error {
	if port == 0 || port > 65535 {
		return fmt.Errorf("port %d out of range", port)
	}
	cfg := discovery.Config{Lifetime: lifetime}
	if gw != "" {
		a, err := netip.ParseAddr(gw)
		if err != nil {
			return err
		}
		cfg.Gateway = a
	}
	if protos != "" {
		for _, s := range strings.Split(protos, ",") {
			p, err := discovery.ParseProtocol(strings.TrimSpace(s))
			if err != nil {
				return err
			}
			cfg.Protocols = append(cfg.Protocols, p)
		}
	}
	if verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	out := printer{json: asJSON}
	cfg.OnEvent = func(e discovery.Event) { out.event(e) }

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := discovery.NewMapper(cfg)
	defer func() {
		if err := m.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "portmap: removing mapping:", err)
		}
	}()

	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if probeOnly {
		r, err := m.Probe(pctx)
		out.probe(r)
		return err
	}
	mp, err := m.Map(pctx, network, uint16(port))
	if err != nil {
		return err
	}
	out.mapping(mp)
	<-ctx.Done()
	return nil
}

type printer struct{ json bool }

func (p printer) emit(v any, text string) {
	if p.json {
		b, _ := json.Marshal(v)
		fmt.Println(string(b))
		return
	}
	fmt.Println(text)
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
