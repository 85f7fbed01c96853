package rtpengine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/sipnat/sipnat/clock"
)

// Defaults of SetConfig.
const (
	DefaultDisableFor = 30 * time.Second // how long an instance that did not answer is skipped
	DefaultCallTTL    = 12 * time.Hour   // how long a call is remembered without a delete
)

// SetConfig configures a Set.
type SetConfig struct {
	// Client sends the requests (required).
	Client *Client
	// Instances are the rtpengine ng addresses (at least one).
	Instances []netip.AddrPort
	// DisableFor is how long an instance that did not answer is left out
	// of new calls (Kamailio's rtpengine_disable_tout). Zero means
	// DefaultDisableFor.
	DisableFor time.Duration
	// CallTTL bounds how long a call's instance is remembered when no
	// delete comes (a lost BYE). Zero means DefaultCallTTL.
	CallTTL time.Duration
	// Clock is the source of time; nil means the system clock.
	Clock clock.Clock
	// Logger receives failovers and disabled instances; nil discards.
	Logger *slog.Logger
}

// InstanceStats are one instance's counters.
type InstanceStats struct {
	Addr     netip.AddrPort `json:"addr"`     // the instance's ng address
	Requests uint64         `json:"requests"` // requests sent to it
	Timeouts uint64         `json:"timeouts"` // requests it did not answer
	Disabled bool           `json:"disabled"` // it did not answer lately: new calls skip it for a while
}

// SetStats are a Set's counters.
type SetStats struct {
	Instances []InstanceStats `json:"instances"` // one per instance, in the Set's order
	Calls     int             `json:"calls"`     // calls in the table
	Failovers uint64          `json:"failovers"` // offers moved to another instance
}

// Set is several rtpengine instances used as one, as Kamailio's rtpengine
// module uses a set: a new call's offer goes to the instance its Call-ID
// hashes to, or to the next that answers when that one does not (it is then
// left out of new calls for DisableFor); the hash is fixed, so proxies
// sharing instances send a Call-ID to the same one; the call's later offers, answers,
// queries and its delete go to the instance that took the offer. A Set is
// safe for concurrent use.
type Set struct {
	c          *Client
	disableFor time.Duration
	ttl        time.Duration
	clock      clock.Clock
	log        *slog.Logger

	mu        sync.Mutex
	inst      []instance
	calls     map[string]callEntry
	failovers uint64
	swept     time.Time
}

type instance struct {
	addr          netip.AddrPort
	disabledUntil time.Time
	requests      uint64
	timeouts      uint64
}

type callEntry struct {
	inst int
	seen time.Time
}

// NewSet returns a set over cfg.Instances.
func NewSet(cfg SetConfig) (*Set, error) {
	if cfg.Client == nil || len(cfg.Instances) == 0 {
		return nil, fmt.Errorf("%w: a set needs a Client and at least one instance", ErrConfig)
	}
	s := &Set{
		c: cfg.Client, disableFor: cfg.DisableFor, ttl: cfg.CallTTL,
		clock: clock.OrSystem(cfg.Clock), log: cfg.Logger,
		calls: make(map[string]callEntry),
	}
	if s.disableFor <= 0 {
		s.disableFor = DefaultDisableFor
	}
	if s.ttl <= 0 {
		s.ttl = DefaultCallTTL
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, a := range cfg.Instances {
		if !a.IsValid() {
			return nil, fmt.Errorf("%w: invalid instance address %v", ErrConfig, a)
		}
		s.inst = append(s.inst, instance{addr: netip.AddrPortFrom(a.Addr().Unmap(), a.Port())})
	}
	return s, nil
}

// Instance returns the instance a new call with callID goes to first:
// the same on every Set with the same instances in the same order, so
// several proxies sharing instances pick alike.
func (s *Set) Instance(callID []byte) netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inst[hashCallID(callID)%uint64(len(s.inst))].addr
}

// hashCallID is FNV-1a: fixed, so that every Set agrees.
func hashCallID(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// Has reports whether the set holds a call (an offer went through and no
// delete yet).
func (s *Set) Has(callID []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.calls[string(callID)]
	return ok
}

// Do sends r to the call's instance, as the Set's doc says, and returns the
// reply (its SDP appended to sdp). When no instance answers it returns an
// error wrapping ErrNoInstance and the last ErrTimeout.
func (s *Set) Do(ctx context.Context, sdp []byte, r *Request) (Reply, error) {
	if r.Command == Ping {
		return Reply{SDP: sdp}, fmt.Errorf("rtpengine: ping a set's instances with Ping: %w", errors.ErrUnsupported)
	}
	order := s.order(r)
	var last error
	for n, i := range order {
		addr := s.count(i)
		rep, err := s.c.Do(ctx, addr, sdp, r)
		if err == nil || !errors.Is(err, ErrTimeout) {
			s.settle(r, i, err)
			if err == nil && n > 0 {
				s.mu.Lock()
				s.failovers++
				s.mu.Unlock()
				s.log.Warn("rtpengine: failover", "command", r.Command, "call", string(r.CallID), "to", addr)
			}
			return rep, err
		}
		last = err
		s.disable(i)
		if ctx.Err() != nil {
			break
		}
	}
	return Reply{SDP: sdp}, fmt.Errorf("%w: %w", ErrNoInstance, last)
}

// order returns the instances to try for a request: the call's own if it
// has one (only that one, unless the request is an offer, which another
// instance can take over), then the live ones starting at the Call-ID's
// hash, then the disabled ones.
func (s *Set) order(r *Request) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.inst)
	order := make([]int, 0, n)
	own := -1
	if e, ok := s.calls[string(r.CallID)]; ok {
		own = e.inst
		order = append(order, own)
		if r.Command != Offer {
			return order
		}
		delete(s.calls, string(r.CallID)) // settle records the instance that answers
	}
	start := int(hashCallID(r.CallID) % uint64(n))
	now := s.clock.Now()
	for k := 0; k < n; k++ {
		if i := (start + k) % n; i != own && !now.Before(s.inst[i].disabledUntil) {
			order = append(order, i)
		}
	}
	for k := 0; k < n; k++ {
		if i := (start + k) % n; i != own && now.Before(s.inst[i].disabledUntil) {
			order = append(order, i)
		}
	}
	return order
}

func (s *Set) count(i int) netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inst[i].requests++
	return s.inst[i].addr
}

func (s *Set) disable(i int) {
	s.mu.Lock()
	s.inst[i].timeouts++
	s.inst[i].disabledUntil = s.clock.Now().Add(s.disableFor)
	addr := s.inst[i].addr
	s.mu.Unlock()
	s.log.Warn("rtpengine: instance does not answer; disabled", "instance", addr, "for", s.disableFor)
}

// settle records where a call lives after an answered request.
func (s *Set) settle(r *Request, i int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.inst[i].disabledUntil = time.Time{}
	switch {
	case r.Command == Delete && len(r.ToTag) == 0 && len(r.ViaBranch) == 0:
		delete(s.calls, string(r.CallID))
	case r.Command == Delete:
		// one branch or dialog ended: the call may live on
	case err == nil && (r.Command == Offer || r.Command == Answer):
		if e, ok := s.calls[string(r.CallID)]; ok {
			e.seen = now
			s.calls[string(r.CallID)] = e
		} else {
			s.calls[string(r.CallID)] = callEntry{inst: i, seen: now}
		}
	}
	if now.Sub(s.swept) > time.Minute {
		s.swept = now
		for k, e := range s.calls {
			if now.Sub(e.seen) > s.ttl {
				delete(s.calls, k)
			}
		}
	}
}

// Ping pings every instance at once and returns their errors (nil where
// one answered). An instance that answers is enabled again.
func (s *Set) Ping(ctx context.Context) []error {
	s.mu.Lock()
	addrs := make([]netip.AddrPort, len(s.inst))
	for i := range s.inst {
		addrs[i] = s.inst[i].addr
	}
	s.mu.Unlock()
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.c.Ping(ctx, a)
		}()
	}
	wg.Wait()
	s.mu.Lock()
	for i, err := range errs {
		if err == nil {
			s.inst[i].disabledUntil = time.Time{}
		}
	}
	s.mu.Unlock()
	return errs
}

// Stats returns the set's counters.
func (s *Set) Stats() SetStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	st := SetStats{Calls: len(s.calls), Failovers: s.failovers}
	for _, in := range s.inst {
		st.Instances = append(st.Instances, InstanceStats{Addr: in.addr, Requests: in.requests,
			Timeouts: in.timeouts, Disabled: now.Before(in.disabledUntil)})
	}
	return st
}

// ParseInstances parses a comma-separated list of ng addresses
// ("host:port[,host:port...]", hosts as IP literals), as a command line
// gives them.
func ParseInstances(s string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		a, err := netip.ParseAddrPort(f)
		if err != nil || a.Port() == 0 {
			return nil, fmt.Errorf("%w: instance %q: want ip:port", ErrConfig, f)
		}
		out = append(out, a)
	}
	return out, nil
}
