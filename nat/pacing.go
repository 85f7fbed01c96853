package nat

import (
	"context"
	"time"

	"github.com/sipnat/sipnat/internal/rtt"
)

// Probe timing. Discover derives its timeouts from the round-trip times of
// the first bindings (RFC 8489 section 6.2.1 computes the RTO as RFC 6298
// does) instead of waiting one fixed timeout for every probe the NAT may
// filter.
const (
	// defaultProbeTimeout is DiscoverConfig.ProbeTimeout's zero value.
	defaultProbeTimeout = time.Second
	// minProbeRTO is the floor of the derived RTO: a LAN's or a
	// namespace's RTT of a fraction of a millisecond would otherwise pace
	// the probes faster than timers and schedulers keep up with.
	minProbeRTO = 10 * time.Millisecond
	// probeRounds is how many times a probe the NAT may filter is sent
	// before its silence can mean "filtered": with 20 % loss each way a
	// request and its answer both pass 64 % of the time, and 12 tries all
	// fail with probability 0.36^12, about 5e-6.
	probeRounds = 12
	// controlRounds is how many control round trips must complete, one
	// after another and after the probes' last sends, before silence counts.
	controlRounds = 3
	// minSilence is the shortest wait before silence counts, whatever the
	// RTT (bounded by half of ProbeTimeout): the server answers filtering
	// probes from other sockets than the controls, and on a busy machine
	// the thread or goroutine behind one of them can lag behind the other.
	minSilence = 200 * time.Millisecond
	// pacedAttempts leaves a paced probe running until its context ends.
	pacedAttempts = 1 << 20
)

// pace makes a transaction retransmit at a fixed interval (its RTO, not
// doubling) until it has been sent rounds times, when it closes reached and
// doubles the interval from then on, as RFC 8489 does.
type pace struct {
	rounds  int
	reached chan struct{}
}

// probe is one probe whose answer the NAT may filter: it runs a paced
// transaction under ctx and returns its outcome (nil: answered).
type probe func(ctx context.Context, p *pace) error

// await runs probes at once, each sent every d.pace, and returns each one's
// outcome (nil: answered). A probe still silent counts as filtered
// (ErrNoResponse) once every probe has been sent probeRounds times, at least
// minSilence has passed, and then control, a Binding the NAT lets through,
// has completed controlRounds round trips one after another: their answers leave the server after the probes'
// answers would have, so the silence is neither loss nor a slow path nor a
// busy machine. ProbeTimeout bounds it all: silence for that long counts as
// filtered too.
func (d *discoverer) await(ctx context.Context, control func(context.Context) error, probes ...probe) []error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bound := d.clock.AfterFunc(d.cfg.ProbeTimeout, cancel)
	defer bound.Stop()
	window := make(chan struct{})
	wt := d.clock.AfterFunc(min(minSilence, d.cfg.ProbeTimeout/2), func() { close(window) })
	defer wt.Stop()
	errs := make([]error, len(probes))
	paces := make([]pace, len(probes))
	finished := make([]chan struct{}, len(probes))
	for i, pr := range probes {
		paces[i] = pace{rounds: probeRounds, reached: make(chan struct{})}
		finished[i] = make(chan struct{})
		go func() {
			defer close(finished[i])
			errs[i] = pr(pctx, &paces[i])
		}()
	}
	pending := func() bool {
		for _, f := range finished {
			select {
			case <-f:
			default:
				return true
			}
		}
		return false
	}
	allDone := make(chan struct{})
	go func() {
		for _, f := range finished {
			<-f
		}
		close(allDone)
	}()
	for i := range probes {
		select {
		case <-paces[i].reached:
		case <-finished[i]:
		case <-pctx.Done():
		}
	}
	select {
	case <-window:
	case <-allDone:
	case <-pctx.Done():
	}
	for n := 0; n < controlRounds && pending() && pctx.Err() == nil; n++ {
		_ = control(pctx) // an error answer is a round trip too
	}
	cancel()
	<-allDone
	return errs
}

// probeOpts returns o for a request whose answer the NAT lets through: the
// derived RTO, doubling, 10 attempts.
func (d *discoverer) probeOpts(o BindingOptions) BindingOptions {
	o.RTO, o.Attempts = d.rto, 10
	return o
}

// pacedOpts returns o for a probe the NAT may filter: sent every d.pace
// until await ends it.
func (d *discoverer) pacedOpts(o BindingOptions) BindingOptions {
	o.RTO, o.Attempts = d.pace, pacedAttempts
	return o
}

// setRTO derives d.rto and d.pace from the round-trip samples in e: the
// RTO bounded by the configured initial RTO, and a pace that fits
// probeRounds sends into half of ProbeTimeout.
func (d *discoverer) setRTO(e *rtt.Estimator) {
	hi := d.cfg.RTO
	if hi <= 0 {
		hi = DefaultRTO
	}
	d.rto = e.RTO(minProbeRTO, hi)
	d.pace = min(d.rto, d.cfg.ProbeTimeout/(2*probeRounds))
}
