package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/sipmsg"
)

// transact sends a request built by build (given its branch) to the
// registrar, retransmitting on UDP (RFC 3261 timer E: T1 doubling to T2),
// and returns the final response.
func (p *Phone) transact(ctx context.Context, build func(branch string) []byte) ([]byte, []byte, error) {
	branch := "z9hG4bK-" + randHex(8)
	ch := make(chan []byte, 1)
	p.mu.Lock()
	p.txs[branch] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.txs, branch)
		p.mu.Unlock()
	}()
	req := build(branch)
	if p.flow != nil { // a stream: no retransmission, the answer comes on the flow
		resp, err := p.flow.Transact(ctx, req)
		return req, resp, err
	}
	sig := p.sl()
	ctx, cancel := context.WithTimeout(ctx, 32*500*time.Millisecond) // timer F
	defer cancel()
	rto := 500 * time.Millisecond
	for {
		if _, err := sig.sip.WriteTo(req, net.UDPAddrFromAddrPort(sig.registrar)); err != nil {
			return req, nil, err
		}
		t := time.NewTimer(rto)
		select {
		case resp := <-ch:
			t.Stop()
			return req, resp, nil
		case <-ctx.Done():
			t.Stop()
			return req, nil, fmt.Errorf("no answer from %s: %w", sig.registrar, ctx.Err())
		case <-t.C:
			rto = min(2*rto, 4*time.Second)
		}
	}
}

// register sends REGISTER (expires 0 unregisters), answering one digest
// challenge, and checks the answer for a SIP ALG and for the public address.
func (p *Phone) register(ctx context.Context, expires time.Duration) error {
	_, err := p.registerAnswer(ctx, expires)
	return err
}

// registerAnswer is register returning the final 2xx.
func (p *Phone) registerAnswer(ctx context.Context, expires time.Duration) ([]byte, error) {
	var auth string
	for attempt := 0; attempt < 2; attempt++ {
		p.mu.Lock()
		p.cseq++
		cseq := p.cseq
		p.mu.Unlock()
		contact := p.sl().nat.Contact()
		if p.flow != nil {
			contact = p.flow.Local() // RFC 5626: the flow, not this address, reaches us
		}
		reqURI := "sip:" + p.cfg.Domain
		req, raw, err := p.transact(ctx, func(branch string) []byte {
			return p.buildRegister(reqURI, branch, cseq, contact, expires, auth)
		})
		if err != nil {
			return nil, err
		}
		var resp sipmsg.Message
		if err := resp.Parse(raw); err != nil {
			return nil, fmt.Errorf("answer: %w", err)
		}
		code := resp.StatusCode()
		switch {
		case code == 401 || code == 407:
			hdr := "WWW-Authenticate"
			if code == 407 {
				hdr = "Proxy-Authenticate"
			}
			v, ok := resp.GetName(hdr)
			if !ok || p.cfg.Password == "" || auth != "" {
				return nil, fmt.Errorf("registrar says %d %s", code, resp.Reason())
			}
			ch, err := parseChallenge(string(v))
			if err != nil {
				return nil, err
			}
			name := "Authorization"
			if code == 407 {
				name = "Proxy-Authorization"
			}
			auth = name + ": " + ch.authorization(p.cfg.User, p.cfg.Password, "REGISTER", reqURI, 1)
			continue
		case code >= 300:
			return nil, fmt.Errorf("registrar says %d %s", code, resp.Reason())
		}
		if expires == 0 {
			p.printf("unregistered")
			return raw, nil
		}
		pub, _ := resp.PublicAddr()
		p.mu.Lock()
		p.public = pub
		p.stats.Registered = true
		p.stats.Registers++
		p.mu.Unlock()
		p.printf("registered %s with Contact %s (the registrar sees us at %s)", p.aor(), contact, pub)
		p.regOnce.Do(func() { close(p.regDone) })
		// The agent checks for a SIP ALG and follows the registrar's rport
		// (a PublicAddressChanged event makes the phone register again).
		if p.flow != nil {
			return raw, nil // the agent's rport and ALG checks are about the UDP socket
		}
		if rep, err := p.sl().nat.ObserveRegister(req, raw, p.sl().registrar); err == nil && rep.Tampered() {
			p.mu.Lock()
			p.stats.ALG = rep.Signs.String()
			p.mu.Unlock()
			p.printf("WARNING: a SIP ALG on the path rewrote the REGISTER (%s); turn it off in the router", rep.Signs)
		}
		return raw, nil
	}
	return nil, errors.New("registrar keeps challenging")
}

func (p *Phone) buildRegister(reqURI, branch string, cseq uint32, contact netip.AddrPort, expires time.Duration, auth string) []byte {
	r := sipmsg.RegisterRequest{Registrar: reqURI, AoR: p.aor(), User: p.cfg.User, Contact: contact, Transport: p.transport(),
		Branch: branch, Tag: p.regTag, CallID: p.regCallID, CSeq: cseq, Expires: expires, UserAgent: "sipnat-softphone"}
	if auth != "" {
		r.Extra = auth + "\r\n"
	}
	if p.flow != nil {
		r.Outbound = sipmsg.Outbound{Instance: p.cfg.Stream.Instance, RegID: 1}
		r.Alias = true
	}
	return sipmsg.AppendRegister(nil, r)
}

// headerLines returns the value of every header line of kind k, in order.
func headerLines(m *sipmsg.Message, k sipmsg.HeaderKind) []string {
	var out []string
	for i := 0; i < m.NumHeaders(); i++ {
		if m.HeaderKind(i) == k {
			out = append(out, string(m.HeaderValue(i)))
		}
	}
	return out
}
