package outbound

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/sipmsg"
)

// StreamLifetime is how long the NATs on the path keep an idle TCP
// connection, as MeasureStreamLifetime bounds it: a connection idle for
// Lower still worked, one idle for Upper did not (Upper zero: every probe
// worked, the lifetime is at least Lower).
type StreamLifetime struct {
	Lower time.Duration `json:"lower"`          // an idle connection survived this long
	Upper time.Duration `json:"upper,omitzero"` // an idle connection was gone after this long; 0: none was
}

// MeasureStreamLifetime bounds the idle timeout of the NATs between the UA
// and the edge for TCP, the way nat's binding-lifetime probe does for UDP:
// it opens probes connections to cfg.Server (cfg's Transport, TCP or TLS,
// Dial, ServerName, RootCAs), leaves them idle, and pings connection i
// (RFC 5626 CRLF) after max·i/probes; a pong within cfg.PongTimeout means
// the NAT still knew it. It takes max plus one pong timeout, on cfg's
// clock. Use Lower as Timing.Lifetime of a stream flow when the edge sends
// no Flow-Timer. A NAT that drops a forgotten connection's packets (as
// after a reboot) gives a sharp answer; one that adopts them (Linux's
// nf_conntrack_tcp_loose) makes every probe succeed.
func MeasureStreamLifetime(ctx context.Context, cfg FlowConfig, max time.Duration, probes int) (StreamLifetime, error) {
	if cfg.Transport != sipmsg.TCP && cfg.Transport != sipmsg.TLS {
		return StreamLifetime{}, fmt.Errorf("%w: stream lifetime over %v", ErrConfig, cfg.Transport)
	}
	if probes < 1 || max <= 0 {
		return StreamLifetime{}, fmt.Errorf("%w: %d probes up to %v", ErrConfig, probes, max)
	}
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = 10 * time.Second
	}
	f := &Flow{cfg: cfg}
	clk := clock.OrSystem(cfg.Clock)
	conns := make([]net.Conn, probes)
	for i := range conns {
		c, err := f.dial(ctx)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return StreamLifetime{}, fmt.Errorf("outbound: stream lifetime probe: %w", err)
		}
		conns[i] = c
	}
	alive := make([]bool, probes)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		idle := max * time.Duration(i+1) / time.Duration(probes)
		go func() {
			defer wg.Done()
			defer c.Close()
			alive[i] = probeAfter(ctx, clk, c, idle, cfg.PongTimeout)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return StreamLifetime{}, err
	}
	var r StreamLifetime
	for i, ok := range alive {
		idle := max * time.Duration(i+1) / time.Duration(probes)
		if !ok {
			r.Upper = idle
			break
		}
		r.Lower = idle
	}
	return r, nil
}

// probeAfter waits idle on clk, pings c and reports whether a pong came
// within timeout.
func probeAfter(ctx context.Context, clk clock.Clock, c net.Conn, idle, timeout time.Duration) bool {
	wait := func(d time.Duration) bool {
		done := make(chan struct{})
		t := clk.AfterFunc(d, func() { close(done) })
		defer t.Stop()
		select {
		case <-done:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !wait(idle) {
		return false
	}
	pong := make(chan bool, 1)
	go func() {
		s := sipmsg.NewStreamReader(c, sipmsg.StreamConfig{})
		for {
			kind, _, err := s.Next()
			if err != nil {
				pong <- false
				return
			}
			if kind == sipmsg.FramePong {
				pong <- true
				return
			}
		}
	}()
	if _, err := c.Write([]byte("\r\n\r\n")); err != nil {
		return false
	}
	done := make(chan struct{})
	t := clk.AfterFunc(timeout, func() { close(done) })
	defer t.Stop()
	select {
	case ok := <-pong:
		return ok
	case <-done:
		return false
	case <-ctx.Done():
		return false
	}
}
