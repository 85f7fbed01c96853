package keepalive

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/sipnat/sipnat/clock"
)

// PingKind is what a Scheduler sends to a contact.
type PingKind uint8

// The kinds of proxy-side pings (Kamailio nathelper's natping).
const (
	// PingUDP is a small datagram (CRLF by default) that only refreshes the
	// binding; no answer is expected, so only send errors count as misses.
	PingUDP PingKind = iota + 1
	// PingOptions is a SIP OPTIONS request; any response counts as an
	// answer, which the caller reports with Scheduler.Answered.
	PingOptions
)

// String returns "udp" or "options".
func (k PingKind) String() string {
	switch k {
	case PingUDP:
		return "udp"
	case PingOptions:
		return "options"
	}
	return fmt.Sprintf("PingKind(%d)", uint8(k))
}

// Contact is one NATed contact a registrar holds: the address its
// registration came from (the "received" address), how often to ping it and
// how.
type Contact struct {
	Addr     netip.AddrPort // where to send pings; the zone of an IPv6 address is not kept
	Interval time.Duration  // time between pings; rounded up to the scheduler's Tick
	Kind     PingKind       // PingUDP or PingOptions
	Socket   uint16         // the caller's index of the local socket to send from, handed back in Ping
}

// Ping is one ping the Scheduler asks its Sender to send.
type Ping struct {
	Addr   netip.AddrPort // the contact to ping
	Kind   PingKind       // what to send
	Socket uint16         // Contact.Socket
	Seq    uint32         // increases by one with every ping the scheduler sends (for CSeq or a branch)
}

// Sender sends pings for a Scheduler. SendPing is called from the
// scheduler's timer goroutine, never concurrently with itself, and must not
// block for long (a UDP write). It must not keep p's buffer-free fields
// beyond the call; an error counts as a missed answer.
type Sender interface {
	// SendPing sends p; an error counts as a missed answer.
	SendPing(p Ping) error
}

// SenderFunc adapts a function to the Sender interface.
type SenderFunc func(p Ping) error

// SendPing calls f(p).
func (f SenderFunc) SendPing(p Ping) error { return f(p) }

// ContactEventKind says what happened to a contact.
type ContactEventKind uint8

// The contact events.
const (
	// Unreachable: the contact missed MaxMisses answers in a row (or its
	// pings could not be sent). The scheduler keeps pinging it until the
	// caller removes it; a late answer yields Answering.
	Unreachable ContactEventKind = iota + 1
	// Answering: a contact reported Unreachable answered again.
	Answering
	// Evicted: Set dropped the contact set longest ago to stay within
	// SchedulerConfig.MaxContacts (a REGISTER flood or contact churn).
	Evicted
)

// String returns "unreachable", "answering" or "evicted".
func (k ContactEventKind) String() string {
	switch k {
	case Unreachable:
		return "unreachable"
	case Answering:
		return "answering"
	case Evicted:
		return "evicted"
	}
	return fmt.Sprintf("ContactEventKind(%d)", uint8(k))
}

// ContactEvent reports a change of a contact's state.
type ContactEvent struct {
	Kind   ContactEventKind `json:"kind"`   // what happened
	Addr   netip.AddrPort   `json:"addr"`   // the contact
	Misses int              `json:"misses"` // answers missed in a row
}

// String describes the event for a person.
func (e ContactEvent) String() string {
	return fmt.Sprintf("%v %v (%d misses)", e.Kind, e.Addr, e.Misses)
}

// ErrInvalidContact is returned by Scheduler.Set for a contact it cannot schedule.
var ErrInvalidContact = errors.New("keepalive: invalid contact")

// SchedulerConfig configures a Scheduler. Send is required; the zero value
// of every other field picks a default.
type SchedulerConfig struct {
	Send      Sender        // sends the pings (required)
	Clock     clock.Clock   // nil: the system clock
	Tick      time.Duration // resolution of the timing wheel; 0 means 100 ms
	MaxMisses int           // unanswered OPTIONS pings in a row before Unreachable; 0 means 3
	// OnEvent receives Unreachable and Answering events. It is called without
	// the scheduler's lock held and may call its methods (Remove, Set).
	OnEvent  func(ContactEvent)
	Rand     rand.Source  // spreads the first ping of a contact over its interval; nil: math/rand/v2
	Capacity int          // expected number of contacts, to size the tables up front
	Logger   *slog.Logger // nil: discard
	// MaxContacts bounds the contacts held, so that a REGISTER flood or
	// contact churn cannot grow memory without end: beyond it Set evicts
	// the contact set longest ago (an Evicted event). 0 means DefaultMaxContacts.
	MaxContacts int
	// MaxRate caps the pings sent per second (with a burst of one second's
	// worth), so that many contacts, or contacts with tiny intervals, cannot
	// turn the registrar into a packet cannon. Over the cap the wheel lags:
	// the rest of a tick's pings wait, in order, for the credit to refill
	// (Throttled counts the ticks cut short). 0 means DefaultMaxRate.
	MaxRate int
}

// Defaults of SchedulerConfig.
const (
	DefaultMaxContacts = 1 << 20 // about 52 MiB of records plus the hash index
	DefaultMaxRate     = 50_000  // a million contacts at a 20 s interval
)

// Scheduler pings the NATed contacts of a registrar so that their NAT
// bindings stay open, and reports those that stop answering.
//
// It keeps every contact in one slab of compact records (about 52 bytes,
// linked by 32-bit indexes rather than pointers) found through an address
// index, and schedules them on a hashed timing wheel driven by a single
// clock timer, which sleeps until the next tick whose slot holds contacts:
// adding, updating, removing and pinging a contact are O(1), and there is
// no goroutine or timer per contact.
//
// A Scheduler is safe for concurrent use.
type Scheduler struct {
	send    Sender
	clock   clock.Clock
	tick    time.Duration
	maxMiss int
	onEvent func(ContactEvent)
	rnd     rand.Source
	log     *slog.Logger
	maxN    int
	rate    int64 // pings per second

	mu        sync.Mutex
	credit    int64     // rate limiter: pings allowed, in 1e-9 pings
	refilled  time.Time // when credit was last topped up
	throttled uint64
	lagging   bool // the last tick stopped at the rate cap
	evicted   uint64
	tab       table
	wheel     []uint32 // slot heads (slab indexes, 0 = empty)
	base      time.Time
	cur       uint32 // last tick processed
	timer     clock.Timer
	armed     bool
	armedAt   uint32 // the tick the timer is armed for
	busy      bool   // a tick is sending; it re-arms the timer when done
	stopped   bool
	seq       uint32
	pings     uint64
	batch     []Ping
	events    []ContactEvent
	failed    []netip.AddrPort
}

const (
	wheelBits = 12
	wheelSize = 1 << wheelBits
	wheelMask = wheelSize - 1
)

// NewScheduler returns a Scheduler; its clock timer runs only while it holds contacts.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Send == nil {
		return nil, fmt.Errorf("%w: SchedulerConfig.Send is nil", ErrConfig)
	}
	s := &Scheduler{
		send:    cfg.Send,
		clock:   clock.OrSystem(cfg.Clock),
		tick:    cfg.Tick,
		maxMiss: cfg.MaxMisses,
		onEvent: cfg.OnEvent,
		rnd:     cfg.Rand,
		log:     cfg.Logger,
		wheel:   make([]uint32, wheelSize),
		maxN:    cfg.MaxContacts,
		rate:    int64(cfg.MaxRate),
	}
	if s.maxN <= 0 {
		s.maxN = DefaultMaxContacts
	}
	if s.rate <= 0 {
		s.rate = DefaultMaxRate
	}
	if s.tick <= 0 {
		s.tick = 100 * time.Millisecond
	}
	if s.maxMiss <= 0 {
		s.maxMiss = 3
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.tab.init(min(cfg.Capacity, s.maxN))
	s.base = s.clock.Now()
	s.refilled = s.base
	s.credit = s.rate * 1e9 // a full burst
	return s, nil
}

func (s *Scheduler) random() uint64 {
	if s.rnd == nil {
		return rand.Uint64()
	}
	return s.rnd.Uint64()
}

// Set adds a contact or, when one with the same address exists, updates its
// interval, kind and socket, and makes it the newest contact (the last to
// be evicted when MaxContacts is reached). A new contact is first pinged at a random
// point within its interval, so contacts added together do not ping
// together; an updated one keeps its state and is next pinged one new
// interval after its last ping (or now, if that is already past).
func (s *Scheduler) Set(c Contact) error {
	if !c.Addr.IsValid() || c.Addr.Port() == 0 {
		return fmt.Errorf("%w: address %v", ErrInvalidContact, c.Addr)
	}
	if c.Kind != PingUDP && c.Kind != PingOptions {
		return fmt.Errorf("%w: kind %v", ErrInvalidContact, c.Kind)
	}
	if c.Interval <= 0 {
		return fmt.Errorf("%w: interval %v", ErrInvalidContact, c.Interval)
	}
	ticks := (c.Interval + s.tick - 1) / s.tick
	if ticks > 1<<30 {
		return fmt.Errorf("%w: interval %v too long for tick %v", ErrInvalidContact, c.Interval, s.tick)
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return ErrStopped
	}
	var evicted netip.AddrPort
	if s.tab.n >= s.maxN && s.tab.lookup(c.Addr) == 0 {
		old := s.tab.oldest
		evicted = s.tab.addr(old)
		s.unlink(old)
		s.tab.remove(old)
		s.evicted++
	}
	s.setLocked(c, ticks)
	s.mu.Unlock()
	if evicted.IsValid() {
		s.log.Debug("keepalive: contact evicted", "addr", evicted)
		if s.onEvent != nil {
			s.onEvent(ContactEvent{Kind: Evicted, Addr: evicted})
		}
	}
	return nil
}

func (s *Scheduler) setLocked(c Contact, ticks time.Duration) {
	now := s.nowTick()
	i, found := s.tab.insert(c.Addr)
	if found {
		s.tab.touch(i, false)
	}
	r := &s.tab.recs[i]
	r.kind = uint8(c.Kind)
	r.socket = c.Socket
	if found {
		last := r.due - r.interval
		r.interval = uint32(ticks)
		due := last + r.interval
		if int32(due-now) <= 0 {
			due = now + 1
		}
		s.unlink(i)
		s.link(i, due)
	} else {
		r.interval = uint32(ticks)
		s.link(i, now+1+uint32(s.random()%uint64(ticks)))
	}
	if !s.armed || int32(r.due-s.armedAt) < 0 {
		s.armLocked()
	}
}

// Remove forgets the contact at addr; it reports whether there was one.
func (s *Scheduler) Remove(addr netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.tab.lookup(addr)
	if i == 0 {
		return false
	}
	s.unlink(i)
	s.tab.remove(i)
	if s.tab.n == 0 && s.armed {
		s.timer.Stop()
		s.armed = false
	}
	return true
}

// Answered records an answer from addr (a response to an OPTIONS ping, or
// any packet the caller counts as one) and reports whether addr is a
// contact. Callers feed it from their read loop.
func (s *Scheduler) Answered(addr netip.AddrPort) bool {
	s.mu.Lock()
	i := s.tab.lookup(addr)
	if i == 0 {
		s.mu.Unlock()
		return false
	}
	r := &s.tab.recs[i]
	misses := int(r.misses)
	wasReported := r.flags&flagReported != 0
	r.flags &^= flagAwaiting | flagReported
	r.misses = 0
	s.mu.Unlock()
	if wasReported && s.onEvent != nil {
		s.onEvent(ContactEvent{Kind: Answering, Addr: addr, Misses: misses})
	}
	return true
}

// Len returns the number of contacts.
func (s *Scheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tab.n
}

// Pings returns how many pings the scheduler has sent.
func (s *Scheduler) Pings() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pings
}

// Throttled returns how many ticks MaxRate cut short (their remaining
// pings went out on later ticks).
func (s *Scheduler) Throttled() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// Evicted returns how many contacts Set evicted because of MaxContacts.
func (s *Scheduler) Evicted() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evicted
}

// Misses returns how many answers in a row the contact at addr has missed,
// and false when addr is not a contact.
func (s *Scheduler) Misses(addr netip.AddrPort) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.tab.lookup(addr)
	if i == 0 {
		return 0, false
	}
	return int(s.tab.recs[i].misses), true
}

// Stop stops the clock timer and drops every contact; later calls to Set
// return ErrStopped.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.armed = false
	s.tab.init(0)
	clear(s.wheel)
}

func (s *Scheduler) nowTick() uint32 {
	return uint32(s.clock.Now().Sub(s.base) / s.tick)
}

// armLocked arms the clock timer for the next tick whose wheel slot holds
// contacts, so that a scheduler with few contacts does not wake every tick.
func (s *Scheduler) armLocked() {
	if s.busy || s.stopped || s.tab.n == 0 {
		return
	}
	next := s.cur + wheelSize
	for k := uint32(1); k < wheelSize; k++ {
		if s.wheel[(s.cur+k)&wheelMask] != 0 {
			next = s.cur + k
			break
		}
	}
	if s.armed && s.armedAt == next {
		return
	}
	s.armed, s.armedAt = true, next
	d := s.base.Add(time.Duration(next) * s.tick).Sub(s.clock.Now())
	if s.lagging { // wait a tick, or until the credit holds a ping
		d = max(s.tick, time.Duration((1e9-s.credit+s.rate-1)/s.rate))
	}
	if s.timer == nil {
		s.timer = s.clock.AfterFunc(d, s.onTick)
	} else {
		s.timer.Reset(d)
	}
}

// onTick processes every tick that fell due, sends the pings outside the
// lock, then re-arms the timer.
func (s *Scheduler) onTick() {
	s.mu.Lock()
	if s.stopped || s.busy {
		s.mu.Unlock()
		return
	}
	s.armed = false
	s.busy = true
	s.batch = s.batch[:0]
	s.events = s.events[:0]
	now := s.nowTick()
	if int32(now-s.cur) > wheelSize {
		s.cur = now - wheelSize
	}
	t := s.clock.Now()
	if el := t.Sub(s.refilled); el > 0 {
		s.credit = min(s.credit+int64(min(el, time.Second))*s.rate, s.rate*1e9)
		s.refilled = t
	}
	s.lagging = false
	for int32(now-s.cur) > 0 {
		if !s.runSlot(s.cur+1, now) {
			s.throttled++
			s.lagging = true
			break
		}
		s.cur++
	}
	s.mu.Unlock()

	s.failed = s.failed[:0]
	for _, p := range s.batch {
		if err := s.send.SendPing(p); err != nil {
			s.log.Debug("keepalive: ping failed", "addr", p.Addr, "err", err)
			s.failed = append(s.failed, p.Addr)
		}
	}

	s.mu.Lock()
	for _, a := range s.failed {
		if i := s.tab.lookup(a); i != 0 {
			s.miss(i, a)
		}
	}
	s.busy = false
	s.armLocked()
	events := s.events
	s.mu.Unlock()
	if s.onEvent != nil {
		for _, e := range events {
			s.onEvent(e)
		}
	}
}

// requeue puts the unprocessed rest of a slot's list, starting at i, back
// into slot h after the records relinked there during the pass (only
// those of later rounds, so the walk is short).
func (s *Scheduler) requeue(h *uint32, i uint32) {
	if *h == 0 {
		*h = i
		s.tab.recs[i].prev = 0
		return
	}
	k := *h
	for s.tab.recs[k].next != 0 {
		k = s.tab.recs[k].next
	}
	s.tab.recs[k].next = i
	s.tab.recs[i].prev = k
}

// runSlot pings the contacts of slot t that are due and moves them on;
// now is the latest tick, later than t when the timer ran late. It returns
// false when MaxRate stopped it before the end of the slot. The slot's
// list is detached and every record pushed onto the head of its next slot,
// which is the record handled just before in the common case (equal
// intervals): one cache miss per ping, for the record itself.
func (s *Scheduler) runSlot(t, now uint32) bool {
	h := &s.wheel[t&wheelMask]
	i := *h
	*h = 0
	for i != 0 {
		r := &s.tab.recs[i]
		nx := r.next
		due := r.due
		if int32(due-t) <= 0 && s.credit < 1e9 { // over MaxRate: the rest waits in the slot
			s.requeue(h, i)
			return false
		}
		if int32(due-t) <= 0 {
			s.credit -= 1e9
			addr := s.tab.addr(i)
			if PingKind(r.kind) == PingOptions {
				if r.flags&flagAwaiting != 0 {
					s.miss(i, addr)
				}
				r.flags |= flagAwaiting
			}
			s.seq++
			s.pings++
			s.batch = append(s.batch, Ping{Addr: addr, Kind: PingKind(r.kind), Socket: r.socket, Seq: s.seq})
			due = t + r.interval
			if int32(due-now) <= 0 { // late: skip the missed rounds, keep the phase
				due = t + ((now-t)/r.interval+1)*r.interval
			}
		}
		s.link(i, due)
		i = nx
	}
	return true
}

// miss counts one missed answer of record i and queues Unreachable when the
// limit is reached.
func (s *Scheduler) miss(i uint32, addr netip.AddrPort) {
	r := &s.tab.recs[i]
	if r.misses < 255 {
		r.misses++
	}
	if int(r.misses) >= s.maxMiss && r.flags&flagReported == 0 {
		r.flags |= flagReported
		s.events = append(s.events, ContactEvent{Kind: Unreachable, Addr: addr, Misses: int(r.misses)})
	}
}

// link puts record i into the wheel slot of tick due.
func (s *Scheduler) link(i, due uint32) {
	r := &s.tab.recs[i]
	r.due = due
	h := &s.wheel[due&wheelMask]
	r.prev = 0
	r.next = *h
	if *h != 0 {
		s.tab.recs[*h].prev = i
	}
	*h = i
	r.flags |= flagLinked
}

// unlink takes record i out of its wheel slot.
func (s *Scheduler) unlink(i uint32) {
	r := &s.tab.recs[i]
	if r.flags&flagLinked == 0 {
		return
	}
	if r.prev != 0 {
		s.tab.recs[r.prev].next = r.next
	} else {
		s.wheel[r.due&wheelMask] = r.next
	}
	if r.next != 0 {
		s.tab.recs[r.next].prev = r.prev
	}
	r.next, r.prev = 0, 0
	r.flags &^= flagLinked
}
