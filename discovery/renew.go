package discovery

import (
	"context"
	"errors"
	"time"
)

// renewIn is when a mapping should be renewed: at half its lease (RFC
// 6886 3.3, RFC 6887 11.2.1); permanent UPnP mappings are checked at half
// the configured lifetime.
func (m *Mapper) renewIn(mp Mapping) time.Duration {
	d := mp.Lifetime / 2
	if mp.Lifetime == 0 {
		d = m.cfg.lifetime() / 2
	}
	if d < time.Second {
		d = time.Second
	}
	return d
}

// store records mp under key and schedules its renewal; m.mu held.
func (m *Mapper) store(key mapKey, mp Mapping) {
	e := m.maps[key]
	if e == nil {
		e = &entry{}
		m.maps[key] = e
	}
	d := m.renewIn(mp)
	mp.RenewAt = m.clock.Now().Add(d)
	e.m = mp
	m.scheduleLocked(key, e, d)
}

func (m *Mapper) scheduleLocked(key mapKey, e *entry, d time.Duration) {
	if e.timer != nil {
		e.timer.Stop()
	}
	e.timer = m.clock.AfterFunc(d, func() { m.renew(context.Background(), key) })
}

// renew renews one mapping and reports what happened.
func (m *Mapper) renew(ctx context.Context, key mapKey) {
	m.op.Lock()
	evs := m.renewLocked(ctx, key)
	m.op.Unlock()
	m.emit(evs)
}

func (m *Mapper) renewLocked(ctx context.Context, key mapKey) []Event {
	if m.isClosed() {
		return nil
	}
	m.mu.Lock()
	e, ok := m.maps[key]
	if !ok {
		m.mu.Unlock()
		return nil
	}
	old := e.m
	m.mu.Unlock()

	mp, reset, err := m.create(ctx, old)
	if err != nil && old.lostSent {
		// The old way is gone for good: probe again and use whatever works.
		m.invalidateProbe()
		var err2 error
		if mp, err2 = m.mapAny(ctx, key.network, key.port); err2 == nil {
			err = nil
			reset = false
		}
	}
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.maps[key]; !ok || cur != e || m.isClosed() {
		return nil
	}
	if err != nil {
		var evs []Event
		if !old.Expires.IsZero() && !now.Before(old.Expires) || isRefusal(err) {
			if !old.lostSent {
				old.lostSent = true
				evs = append(evs, Event{Kind: EventLost, Mapping: old, Err: err, Reason: "renewal failed and the lease ran out; retrying"})
			}
		}
		e.m = old
		d := 30 * time.Second
		if !old.Expires.IsZero() && old.Expires.After(now) {
			d = old.Expires.Sub(now) / 2
		}
		d = min(max(d, 2*time.Second), time.Minute)
		e.m.RenewAt = now.Add(d)
		m.scheduleLocked(key, e, d)
		m.log.Debug("discovery: renewal failed", "mapping", old.String(), "retry_in", d, "err", err)
		return evs
	}
	mp.Renewals = old.Renewals + 1
	mp.Restarts = old.Restarts
	var evs []Event
	if reset {
		mp.Restarts++
		evs = append(evs, Event{Kind: EventGatewayRestarted, Mapping: mp, Reason: "the gateway's epoch went back: it restarted and lost its mappings; this one was re-created"})
	}
	switch {
	case mp.External != old.External:
		evs = append(evs, Event{Kind: EventAddressChanged, Mapping: mp, Previous: old.External, Reason: "the gateway now forwards a different external address or port"})
	case old.lostSent:
		evs = append(evs, Event{Kind: EventMapped, Mapping: mp, Reason: "re-created after it was lost"})
	case !reset:
		evs = append(evs, Event{Kind: EventRenewed, Mapping: mp})
	}
	m.store(key, mp)
	for i := range evs {
		evs[i].Mapping = m.maps[key].m
	}
	if reset {
		m.renewSoonLocked(mp.Protocol, key)
	}
	return evs
}

func isRefusal(err error) bool {
	var re *ResultError
	return errors.As(err, &re)
}

// restartDetected schedules every mapping of protocol p for renewal now.
func (m *Mapper) restartDetected(p Protocol) {
	m.log.Info("discovery: gateway restart detected", "protocol", p)
	m.mu.Lock()
	m.renewSoonLocked(p, mapKey{})
	m.mu.Unlock()
}

// renewSoonLocked reschedules the mappings of p (all but skip) to renew now.
func (m *Mapper) renewSoonLocked(p Protocol, skip mapKey) {
	for k, e := range m.maps {
		if k != skip && e.m.Protocol == p {
			e.m.RenewAt = m.clock.Now()
			m.scheduleLocked(k, e, 0)
		}
	}
}

// Refresh renews every mapping now, one after the other, and returns when
// done. Renewal results are reported as events.
func (m *Mapper) Refresh(ctx context.Context) {
	for _, mp := range m.Mappings() {
		m.renew(ctx, mapKey{mp.Network, mp.Internal.Port()})
	}
}
