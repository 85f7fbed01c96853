package discovery

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// listenAnnounce starts the listener for unsolicited gateway messages: a
// PCP ANNOUNCE response (RFC 6887 14.1.3) and a NAT-PMP external-address
// announcement (RFC 6886 3.2.1), both multicast to 224.0.0.1:5350 by a
// gateway that rebooted or changed address. 224.0.0.1 is joined by every
// multicast-capable interface, so binding the port is enough.
func (m *Mapper) listenAnnounce() {
	lp := m.cfg.ListenPacket
	if lp == nil {
		var lc net.ListenConfig
		lp = lc.ListenPacket
	}
	ctx, cancel := m.opContext(context.Background(), 5*time.Second)
	conn, err := lp(ctx, "udp4", m.cfg.AnnounceAddr)
	cancel()
	if err != nil {
		m.log.Warn("discovery: cannot listen for gateway announcements", "addr", m.cfg.AnnounceAddr, "err", err)
		return
	}
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		<-m.closed
		conn.Close()
	}()
	go func() {
		defer m.wg.Done()
		buf := make([]byte, pcpMaxPacket+1)
		for {
			n, src, err := conn.ReadFrom(buf)
			if err != nil {
				if m.isClosed() {
					return
				}
				m.log.Debug("discovery: announcement read", "err", err)
				continue
			}
			ua, ok := src.(*net.UDPAddr)
			if !ok {
				continue
			}
			m.handleAnnounce(buf[:n], ua.AddrPort())
		}
	}()
}

// handleAnnounce checks an unsolicited message and renews the mappings of
// its protocol when the gateway restarted or its address changed.
func (m *Mapper) handleAnnounce(b []byte, src netip.AddrPort) {
	m.mu.Lock()
	gw := m.probeRes.Gateway
	if m.cfg.Gateway.IsValid() {
		gw = m.cfg.Gateway
	}
	m.mu.Unlock()
	if !gw.IsValid() || src.Addr().Unmap() != gw {
		m.log.Debug("discovery: ignoring announcement not from the gateway", "src", src, "err", ErrNotGateway)
		return
	}
	var proto Protocol
	var epoch uint32
	var ext netip.Addr
	switch {
	case len(b) > 0 && b[0] == pcpVersion:
		r, err := parsePCPResponse(b)
		if err != nil || r.Op != pcpOpAnnounce || r.Result != 0 {
			return
		}
		proto, epoch = ProtoPCP, r.Epoch
	case len(b) > 0 && b[0] == pmpVersion:
		r, err := parsePMPResponse(b)
		if err != nil || r.Op != pmpOpAddr || r.Result != 0 {
			return
		}
		proto, epoch, ext = ProtoNATPMP, r.Epoch, r.External
	default:
		return
	}
	m.mu.Lock()
	reset := m.noteEpochLocked(proto, epoch)
	changed := false
	if ext.IsValid() {
		if m.probeRes.External.IsValid() && m.probeRes.External != ext {
			changed = true
		}
		if m.probeRes.ExternalFrom == ProtoNATPMP || !m.probeRes.External.IsValid() {
			m.probeRes.External, m.probeRes.ExternalFrom = ext, ProtoNATPMP
		}
	}
	m.mu.Unlock()
	m.log.Info("discovery: gateway announcement", "protocol", proto, "epoch", epoch, "restart", reset, "address_changed", changed)
	if reset || changed {
		m.restartDetected(proto)
	}
}
