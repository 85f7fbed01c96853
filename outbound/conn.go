package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sipnat/sipnat/nat"
	"github.com/sipnat/sipnat/sipmsg"
)

// CertificateError says the edge proxy's TLS certificate was rejected:
// not signed by the caller's roots, not for FlowConfig.ServerName, expired.
// It wraps the crypto/x509 error.
type CertificateError struct {
	Server     netip.AddrPort // the server dialled
	ServerName string         // the name the certificate was checked for
	Err        error          // the crypto/x509 error
}

// Error names the server, the name checked and why the certificate was rejected.
func (e *CertificateError) Error() string {
	return fmt.Sprintf("outbound: TLS to %s: certificate rejected for %q: %v", e.Server, e.ServerName, e.Err)
}

// Unwrap returns the crypto/x509 error.
func (e *CertificateError) Unwrap() error { return e.Err }

// dial opens the flow's connection: UDP (connected), TCP, or TLS with the
// server's certificate checked against RootCAs and ServerName.
func (f *Flow) dial(ctx context.Context) (net.Conn, error) {
	dial := f.cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	network := "tcp"
	if f.cfg.Transport == sipmsg.UDP {
		network = "udp"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*f.cfg.PongTimeout)
	defer cancel()
	c, err := dial(ctx, network, f.cfg.Server.String())
	if err != nil {
		return nil, fmt.Errorf("outbound: connect %s %s: %w", f.cfg.Transport, f.cfg.Server, err)
	}
	if f.cfg.Transport != sipmsg.TLS {
		return c, nil
	}
	tc := tls.Client(c, &tls.Config{ServerName: f.cfg.ServerName, RootCAs: f.cfg.RootCAs, MinVersion: tls.VersionTLS12})
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		if isCertError(err) {
			return nil, &CertificateError{Server: f.cfg.Server, ServerName: f.cfg.ServerName, Err: err}
		}
		return nil, fmt.Errorf("outbound: TLS handshake with %s: %w", f.cfg.Server, err)
	}
	return tc, nil
}

func isCertError(err error) bool {
	var (
		v  *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &v) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// read reads connection c until it fails: frames of a stream, datagrams of
// UDP (STUN to the flow's STUN client).
func (f *Flow) read(c net.Conn) error {
	if f.cfg.Transport == sipmsg.UDP {
		return f.readDatagrams(c)
	}
	s := sipmsg.NewStreamReader(c, sipmsg.StreamConfig{Max: f.cfg.MaxMessage})
	for {
		kind, b, err := s.Next()
		if err != nil {
			return fmt.Errorf("outbound: read %s %s: %w", f.cfg.Transport, f.cfg.Server, err)
		}
		switch kind {
		case sipmsg.FramePong:
			f.mu.Lock()
			k := f.keeper
			f.mu.Unlock()
			if k != nil {
				k.Answer()
			}
		case sipmsg.FramePing:
			_ = f.write(c, []byte("\r\n")) // RFC 5626 §4.4.1 pong
		case sipmsg.FrameMessage:
			f.deliver(b)
		}
	}
}

func (f *Flow) readDatagrams(c net.Conn) error {
	buf := make([]byte, 65535)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("outbound: read UDP %s: %w", f.cfg.Server, err)
		}
		b := buf[:n]
		switch {
		case nat.IsSTUN(b):
			f.mu.Lock()
			s := f.stun
			f.mu.Unlock()
			if s != nil {
				s.HandlePacket(b, f.cfg.Server)
			}
		case n > 0 && (b[0] == '\r' || b[0] == '\n' || b[0] == 0):
			// a keep-alive from the server
		default:
			f.deliver(b)
		}
	}
}

// deliver hands a message to the Transact waiting for it or to OnMessage.
func (f *Flow) deliver(b []byte) {
	var m sipmsg.Message
	if err := m.Parse(b); err != nil {
		f.log.Debug("outbound: dropped", "err", err)
		return
	}
	if !m.IsRequest() {
		if m.StatusCode() == sipmsg.StatusFlowFailed {
			defer f.rejected(&m) // after the answer is handed on
		}
		if v, err := m.ParseTopVia(); err == nil {
			id := string(v.Branch.Value.In(m.Bytes()))
			f.mu.Lock()
			ch, ok := f.txs[id]
			if ok && m.StatusCode() >= 200 {
				delete(f.txs, id)
			}
			f.mu.Unlock()
			if ok {
				if m.StatusCode() >= 200 {
					ch <- append([]byte(nil), b...)
				}
				return
			}
		}
	}
	if f.cfg.OnMessage != nil {
		f.cfg.OnMessage(f, b)
	}
}

// rejected ends the current connection because the edge answered 430
// Flow Failed (ErrFlowRejected); Run forms the flow again. The answer still
// goes to the request's Transact or to OnMessage.
func (f *Flow) rejected(m *sipmsg.Message) {
	f.mu.Lock()
	end := f.end
	f.mu.Unlock()
	cseq, _ := m.Get(sipmsg.HdrCSeq)
	f.log.Info("outbound: the edge says the flow is gone", "server", f.cfg.Server, "transport", f.cfg.Transport, "cseq", string(cseq))
	if end != nil {
		end(fmt.Errorf("%w (to %s)", ErrFlowRejected, cseq))
	}
}

// Transact sends request req (its top Via branch identifies it) on the
// flow and returns the final response read from the flow. On UDP the
// request is retransmitted (RFC 3261 timer E); the wait ends with ctx or
// after 64·T1 (timer B/F) with ErrTimeout.
func (f *Flow) Transact(ctx context.Context, req []byte) ([]byte, error) {
	var m sipmsg.Message
	if err := m.Parse(req); err != nil || !m.IsRequest() {
		return nil, fmt.Errorf("outbound: transact: not a request: %w", errOr(err))
	}
	v, err := m.ParseTopVia()
	if err != nil {
		return nil, fmt.Errorf("outbound: transact: %w", err)
	}
	id := string(v.Branch.Value.In(m.Bytes()))
	ch := make(chan []byte, 1)
	f.mu.Lock()
	c := f.conn
	if c != nil {
		f.txs[id] = ch
	}
	f.mu.Unlock()
	if c == nil {
		return nil, ErrNoFlow
	}
	defer func() {
		f.mu.Lock()
		if f.txs[id] == ch {
			delete(f.txs, id)
		}
		f.mu.Unlock()
	}()
	timeout := make(chan struct{})
	tt := f.clock.AfterFunc(64*t1, func() { close(timeout) }) // timer B/F
	defer tt.Stop()
	rto := t1
	for {
		if err := f.write(c, req); err != nil {
			return nil, fmt.Errorf("outbound: send %s: %w", m.Method(), err)
		}
		var retry chan struct{}
		if f.cfg.Transport == sipmsg.UDP {
			retry = make(chan struct{})
			t := f.clock.AfterFunc(rto, func() { close(retry) }) // timer E
			defer t.Stop()
			rto = min(2*rto, 8*t1)
		}
		select {
		case resp, ok := <-ch:
			if !ok {
				return nil, fmt.Errorf("outbound: %s: %w", m.Method(), ErrNoFlow)
			}
			return resp, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("outbound: %s to %s: %w", m.Method(), f.cfg.Server, ctx.Err())
		case <-timeout:
			return nil, fmt.Errorf("outbound: %s to %s: %w", m.Method(), f.cfg.Server, ErrTimeout)
		case <-retry:
		}
	}
}

// t1 is SIP's RTT estimate (RFC 3261 §17.1.1.1).
const t1 = 500 * time.Millisecond

// packetConn lets the STUN client send on a connected UDP socket.
type packetConn struct{ net.Conn }

func (p packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, err := p.Read(b)
	return n, p.RemoteAddr(), err
}

func (p packetConn) WriteTo(b []byte, _ net.Addr) (int, error) { return p.Write(b) }
