package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// exchange sends req to the gateway's NAT-PMP/PCP port over a connected UDP
// socket (so only the gateway's answers get in, and a closed port fails at
// once with ICMP port unreachable) and retransmits it as RFC 6886 3.1 and
// RFC 6887 8.1.1 say (250 ms, doubling) until accept reports an answer or
// ctx ends. accept returns done=false to skip a packet that is not the answer.
func (m *Mapper) exchange(ctx context.Context, gw netip.Addr, req []byte, accept func([]byte) (bool, error)) error {
	dst := netip.AddrPortFrom(gw, m.pmpPort())
	c, err := m.dial(ctx, "udp", dst.String())
	if err != nil {
		return fmt.Errorf("dial %s: %w", dst, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, pcpMaxPacket+1)
	wait := 250 * time.Millisecond
	for try := 0; try < 9; try++ {
		if _, err := c.Write(req); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w from %s: %w", ErrNoResponse, dst, ctx.Err())
			}
			return fmt.Errorf("send to %s: %w", dst, err)
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := c.SetReadDeadline(deadline); err != nil {
			return err
		}
		for {
			n, err := c.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("%w from %s: %w", ErrNoResponse, dst, ctx.Err())
				}
				if errors.Is(err, syscall.ECONNREFUSED) {
					return fmt.Errorf("%w: %s port closed: %w", ErrNoResponse, dst, err)
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				return fmt.Errorf("read from %s: %w", dst, err)
			}
			done, err := accept(buf[:n])
			if done {
				return err
			}
		}
		wait *= 2
	}
	return fmt.Errorf("%w from %s after 9 tries", ErrNoResponse, dst)
}

func (m *Mapper) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if m.cfg.DialContext != nil {
		return m.cfg.DialContext(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// pmpExternal asks a NAT-PMP gateway for its external address.
func (m *Mapper) pmpExternal(ctx context.Context, gw netip.Addr) (pmpResponse, error) {
	var resp pmpResponse
	err := m.exchange(ctx, gw, appendPMPAddrRequest(nil), func(b []byte) (bool, error) {
		r, err := parsePMPResponse(b)
		if err != nil || r.Op != pmpOpAddr {
			m.log.Debug("discovery: ignoring NAT-PMP packet", "len", len(b), "err", err)
			return false, nil
		}
		resp = r
		return true, pmpError(r.Result)
	})
	if err != nil {
		return resp, fmt.Errorf("NAT-PMP external address: %w", err)
	}
	return resp, nil
}

// pmpMap requests (lifetime > 0) or deletes (lifetime 0) a NAT-PMP mapping.
func (m *Mapper) pmpMap(ctx context.Context, gw netip.Addr, tcp bool, internal, external uint16, lifetime uint32) (pmpResponse, error) {
	var resp pmpResponse
	req := appendPMPMapRequest(nil, tcp, internal, external, lifetime)
	err := m.exchange(ctx, gw, req, func(b []byte) (bool, error) {
		r, err := parsePMPResponse(b)
		if err != nil || r.Op != req[1] || (r.Result == 0 && r.InternalPort != internal) {
			m.log.Debug("discovery: ignoring NAT-PMP packet", "len", len(b), "err", err)
			return false, nil
		}
		resp = r
		return true, pmpError(r.Result)
	})
	if err != nil {
		return resp, fmt.Errorf("NAT-PMP map port %d: %w", internal, err)
	}
	return resp, nil
}

// pcpAccept returns the accept function for a PCP exchange of opcode op;
// for MAP it checks the nonce, protocol and internal port.
func (m *Mapper) pcpAccept(op uint8, nonce *[12]byte, proto uint8, internal uint16, out *pcpResponse) func([]byte) (bool, error) {
	return func(b []byte) (bool, error) {
		if len(b) >= 4 && b[0] == pmpVersion && b[1]&pmpOpReply != 0 {
			// A NAT-PMP-only gateway answers a version-2 request with
			// version 0 and UNSUPP_VERSION (RFC 6887 9).
			r, err := parsePMPResponse(b)
			if err == nil && r.Result == pmpResultUnsupp {
				return true, &ResultError{Protocol: ProtoPCP, Code: pcpResultUnsupp, Text: "UNSUPP_VERSION (the gateway speaks NAT-PMP only)"}
			}
			return false, nil
		}
		r, err := parsePCPResponse(b)
		if err != nil || r.Op != op {
			m.log.Debug("discovery: ignoring PCP packet", "len", len(b), "err", err)
			return false, nil
		}
		if op == pcpOpMap && r.Proto != 0 {
			if r.Nonce != *nonce {
				m.log.Warn("discovery: PCP MAP response with a foreign nonce ignored", "err", ErrNonceMismatch)
				return false, nil
			}
			if r.Proto != proto || r.InternalPort != internal {
				return false, nil
			}
			// a success that maps to no address is not an answer (our own
			// request echoed back reads as one, with 0.0.0.0): wait on
			if ext := r.External; r.Result == 0 && r.Lifetime > 0 && (!ext.IsValid() || ext.IsUnspecified() || ext.IsMulticast()) {
				m.log.Debug("discovery: ignoring PCP MAP success without an external address", "external", ext)
				return false, nil
			}
		}
		*out = r
		return true, pcpError(r.Result)
	}
}

// pcpAnnounce sends an ANNOUNCE request: a PCP server answers SUCCESS with
// its epoch (RFC 6887 14.1).
func (m *Mapper) pcpAnnounce(ctx context.Context, gw, local netip.Addr) (pcpResponse, error) {
	var resp pcpResponse
	err := m.exchange(ctx, gw, appendPCPAnnounceRequest(nil, local), m.pcpAccept(pcpOpAnnounce, nil, 0, 0, &resp))
	if err != nil {
		return resp, fmt.Errorf("PCP announce: %w", err)
	}
	return resp, nil
}

// pcpMap requests (lifetime > 0) or deletes (lifetime 0) a PCP mapping.
func (m *Mapper) pcpMap(ctx context.Context, gw, local netip.Addr, nonce [12]byte, tcp bool, internal, external uint16, suggested netip.Addr, lifetime uint32) (pcpResponse, error) {
	var resp pcpResponse
	proto := uint8(pcpProtoUDP)
	if tcp {
		proto = pcpProtoTCP
	}
	req := appendPCPMapRequest(nil, nonce, tcp, local, internal, external, suggested, lifetime)
	err := m.exchange(ctx, gw, req, m.pcpAccept(pcpOpMap, &nonce, proto, internal, &resp))
	if err != nil {
		return resp, fmt.Errorf("PCP map port %d: %w", internal, err)
	}
	if lifetime > 0 && (!resp.External.IsValid() || resp.ExternalPort == 0) {
		return resp, fmt.Errorf("PCP map port %d: no external address in answer: %w", internal, ErrMalformed)
	}
	return resp, nil
}

// Prefix64 asks the gateway's PCP server for the prefixes of its NAT64
// (RFC 7225): an ANNOUNCE request carrying an empty PREFIX64 option, which
// creates nothing on the gateway. A server that does not implement RFC
// 7225 ignores the option (it is optional to process) and answers the
// ANNOUNCE without it, or, like miniupnpd, with the request's empty option
// copied back: the error then matches ErrNoPrefix64. A PREFIX64
// that cannot be read gives ErrMalformed (or ErrUnsupported for a non-zero
// suffix).
func (m *Mapper) Prefix64(ctx context.Context) ([]Prefix64, error) {
	if m.isClosed() {
		return nil, ErrClosed
	}
	gw, local, err := m.gatewayAddrs(ctx)
	if err != nil {
		return nil, fmt.Errorf("PCP PREFIX64: %w", err)
	}
	ctx, cancel := m.opContext(ctx, m.opTimeout(ProtoPCP))
	defer cancel()
	var resp pcpResponse
	req := appendPrefix64Request(appendPCPAnnounceRequest(nil, local))
	if err := m.exchange(ctx, gw, req, m.pcpAccept(pcpOpAnnounce, nil, 0, 0, &resp)); err != nil {
		return nil, fmt.Errorf("PCP PREFIX64 from %s: %w", gw, err)
	}
	switch {
	case len(resp.Prefix64) > 0:
		return resp.Prefix64, nil
	case resp.Prefix64Err != nil:
		return nil, fmt.Errorf("PCP PREFIX64 from %s: %w", gw, resp.Prefix64Err)
	}
	if resp.Prefix64Echo {
		return nil, fmt.Errorf("PCP PREFIX64 from %s: %w (it returned the request's empty option unprocessed)", gw, ErrNoPrefix64)
	}
	return nil, fmt.Errorf("PCP PREFIX64 from %s: %w", gw, ErrNoPrefix64)
}
