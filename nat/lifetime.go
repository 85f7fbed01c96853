package nat

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// lifetimeGrid are the idle times probed at once, each on its own socket.
// Neighbours are at most 25% apart above 4 s, so the first idle time after
// which the binding is gone bounds the lifetime to within that step.
var lifetimeGrid = []time.Duration{
	0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second,
	5 * time.Second, 6 * time.Second, 8 * time.Second, 10 * time.Second,
	12 * time.Second, 15 * time.Second, 20 * time.Second, 25 * time.Second,
	30 * time.Second, 40 * time.Second, 50 * time.Second, 60 * time.Second,
	75 * time.Second, 90 * time.Second, 2 * time.Minute, 150 * time.Second,
	3 * time.Minute, 4 * time.Minute, 5 * time.Minute, 6 * time.Minute,
	8 * time.Minute, 10 * time.Minute, 12 * time.Minute, 15 * time.Minute,
}

type lifetimeResult struct {
	alive, gone time.Duration
}

type probeState uint8

const (
	probePending probeState = iota
	probeAlive
	probeGone
	probeFailed // the probe could not run (no binding to start from)
)

// lifetime measures the binding lifetime with RFC 5780 section 4.6 probes,
// all started at once: socket X_t gets a binding from the primary server,
// stays idle for t, then the caller's socket sends a Binding request with
// RESPONSE-PORT set to X_t's mapped port; the answer reaches X_t only while
// its binding lives. The search ends as soon as the shortest idle time whose
// binding is gone is known (all shorter ones having answered), so it takes
// about the lifetime itself plus ProbeTimeout. The 0 s probe is the control:
// if it fails, the server ignores RESPONSE-PORT and nothing is reported.
func (d *discoverer) lifetime(ctx context.Context, primary netip.AddrPort) lifetimeResult {
	var grid []time.Duration
	for _, t := range lifetimeGrid {
		if t > d.cfg.LifetimeMax {
			break
		}
		grid = append(grid, t)
	}
	if grid[len(grid)-1] < d.cfg.LifetimeMax {
		grid = append(grid, d.cfg.LifetimeMax)
	}
	return searchLifetime(ctx, grid, func(ctx context.Context, idle time.Duration) probeState {
		return d.lifetimeProbe(ctx, primary, idle)
	})
}

// searchLifetime runs probe for every idle time of grid at once and returns
// as soon as the shortest idle time whose binding is gone is known, with
// every shorter probe finished; the probes still running are cancelled.
func searchLifetime(ctx context.Context, grid []time.Duration, probe func(context.Context, time.Duration) probeState) lifetimeResult {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancel: stops the probes still idle
	defer cancel()

	states := make([]probeState, len(grid))
	type report struct {
		i int
		s probeState
	}
	reports := make(chan report, len(grid))
	for i, idle := range grid {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports <- report{i, probe(ctx, idle)}
		}()
	}
	var out lifetimeResult
	for range grid {
		var r report
		select {
		case r = <-reports:
		case <-ctx.Done():
			return out
		}
		states[r.i] = r.s
		// Walk up from the shortest idle time while results are in.
		out = lifetimeResult{}
		for i, s := range states {
			if s == probePending {
				break
			}
			if s == probeAlive {
				out.alive = grid[i]
			}
			if s == probeGone {
				if i == 0 {
					return lifetimeResult{} // control failed: RESPONSE-PORT unsupported
				}
				out.gone = grid[i]
				return out
			}
		}
	}
	return out
}

// lifetimeProbe runs one probe with idle time idle.
func (d *discoverer) lifetimeProbe(ctx context.Context, primary netip.AddrPort, idle time.Duration) probeState {
	pc, err := d.listen(ctx)
	if err != nil {
		d.log.Debug("nat: lifetime socket", "err", err)
		return probeFailed
	}
	defer pc.Close()
	c := NewClient(pc, ClientConfig{Clock: d.cfg.Clock, Logger: d.cfg.Logger})
	defer c.Close()
	r, err := c.BindingWith(ctx, primary, d.probeOpts(BindingOptions{}))
	if err != nil {
		return probeFailed
	}
	if idle > 0 {
		wake := make(chan struct{})
		t := d.clock.AfterFunc(idle, func() { close(wake) })
		select {
		case <-wake:
		case <-ctx.Done():
			t.Stop()
			return probeFailed
		}
	}
	// A lifetime probe takes seconds of idling anyway, so it does not take
	// the control round trips' early verdict: on a busy machine an answer
	// to the idle socket can be read after the primary socket's controls,
	// which made a live binding look gone. Silence for the whole
	// ProbeTimeout is what counts as gone here.
	answered := make(chan struct{})
	untilAnswered := func(ctx context.Context) error {
		select {
		case <-answered:
		case <-ctx.Done():
		}
		return nil
	}
	err = d.await(ctx, untilAnswered, func(ctx context.Context, p *pace) error {
		defer close(answered)
		_, err := c.transact(ctx, primary, d.pacedOpts(BindingOptions{ResponsePort: r.Mapped.Port(), From: primary}), d.conn, false, p)
		return err
	})[0]
	if err == nil {
		return probeAlive
	}
	if ctx.Err() != nil {
		return probeFailed
	}
	return probeGone
}
