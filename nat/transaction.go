package nat

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v2"

	"github.com/sipnat/sipnat/clock"
	"github.com/sipnat/sipnat/internal/callerconn"
)

// transaction is one Binding transaction in flight. Transactions are kept
// on the client's free list and reused, with their messages and timer, so a
// transaction allocates nothing in steady state.
type transaction struct {
	c      *Client // fixed at creation
	id     [12]byte
	req    stun.Message
	resp   stun.Message
	server netip.AddrPort
	via    net.PacketConn
	o      BindingOptions
	echo   bool  // hairpin test: the "answer" is our own request
	pace   *pace // nil: RFC 8489 schedule (RTO doubling); else a fixed pace for its rounds

	timer    clock.Timer
	rto      time.Duration
	rtoInit  time.Duration
	rc       int
	sent     int
	last     time.Time // latest transmission
	done     chan struct{}
	finished bool
	stale    bool // a timer callback may still run: do not reuse

	res       Response
	err       error
	decodeErr error // set by decode for error responses
	malformed error
}

func (tx *transaction) fire() {
	c := tx.c
	c.mu.Lock()
	if tx.finished {
		c.mu.Unlock()
		return
	}
	if tx.sent >= tx.rc {
		err := fmt.Errorf("binding %v after %d requests: %w", tx.server, tx.sent, ErrNoResponse)
		if tx.malformed != nil {
			err = fmt.Errorf("binding %v: %w", tx.server, tx.malformed)
		}
		c.finishLocked(tx, err)
		c.mu.Unlock()
		return
	}
	tx.countSend()
	var next time.Duration
	if tx.pace == nil || tx.sent >= tx.pace.rounds {
		tx.rto *= 2 // a paced probe backs off once it has its rounds
	}
	if tx.sent >= tx.rc {
		next = tx.rtoInit * time.Duration(c.cfg.Rm)
	} else {
		next = tx.rto
	}
	tx.timer.Reset(next)
	tx.last = c.clock.Now()
	raw, via, dst := tx.req.Raw, tx.via, tx.server
	c.mu.Unlock()
	if err := callerconn.WriteTo(via, raw, dst); err != nil {
		c.log.Debug("stun: retransmit failed", "server", dst, "err", err)
	}
}

// countSend counts one more transmission of tx's request; c.mu held.
func (tx *transaction) countSend() {
	tx.sent++
	if tx.pace != nil && tx.sent == tx.pace.rounds {
		close(tx.pace.reached)
	}
}

// accepts reports whether an answer from from may belong to tx.
func (tx *transaction) accepts(from netip.AddrPort) bool {
	if tx.o.From.IsValid() {
		return from == tx.o.From
	}
	srv := tx.server
	sameIP := from.Addr() == srv.Addr()
	samePort := from.Port() == srv.Port()
	return sameIP != tx.o.ChangeIP && samePort != tx.o.ChangePort
}

// decode parses an answer into tx.res (success) or tx.decodeErr (error
// response). A non-nil return means the answer was unusable.
func (tx *transaction) decode(b []byte, from netip.AddrPort) error {
	serverErr, err := decodeAnswerInto(&tx.resp, b, &tx.res)
	if err != nil {
		return err
	}
	tx.decodeErr = serverErr
	tx.res.From = from
	return nil
}

// decodeAnswer is decodeAnswerInto returning the Response by value.
func decodeAnswer(m *stun.Message, b []byte) (r Response, serverErr, err error) {
	serverErr, err = decodeAnswerInto(m, b, &r)
	return r, serverErr, err
}

// decodeAnswerInto decodes a Binding answer b into m (reusing its buffers)
// and reads it: a success response fills *r, an error response gives
// serverErr (a *ServerError). err reports an unusable message. A success
// response is decoded without allocating.
func decodeAnswerInto(m *stun.Message, b []byte, r *Response) (serverErr, err error) {
	m.Raw = append(m.Raw[:0], b...)
	if err := m.Decode(); err != nil {
		return nil, fmt.Errorf("decode: %w", ErrMalformed)
	}
	if err := checkFingerprint(m); err != nil {
		return nil, err
	}
	if m.Type.Method != stun.MethodBinding {
		return nil, fmt.Errorf("answer method %v: %w", m.Type.Method, ErrMalformed)
	}
	switch m.Type.Class {
	case stun.ClassErrorResponse:
		serverErr = parseErrorCode(m)
		var se *ServerError
		if !errors.As(serverErr, &se) {
			return nil, serverErr
		}
		return serverErr, nil
	case stun.ClassSuccessResponse:
		return nil, parseResponseInto(m, r)
	}
	return nil, fmt.Errorf("answer class %v: %w", m.Type.Class, ErrMalformed)
}

// parseResponse is parseResponseInto returning the Response by value.
func parseResponse(m *stun.Message) (Response, error) {
	var r Response
	err := parseResponseInto(m, &r)
	return r, err
}

// parseResponseInto reads the address attributes of a decoded Binding
// success response into *r, in one pass over its attributes. It does not
// allocate.
func parseResponseInto(m *stun.Message, r *Response) error {
	*r = Response{}
	var xorMapped, mapped, other, changed, origin, source []byte
	for _, a := range m.Attributes {
		// The first of duplicate attributes counts.
		switch a.Type {
		case stun.AttrXORMappedAddress:
			if xorMapped == nil {
				xorMapped = a.Value
			}
		case stun.AttrMappedAddress:
			if mapped == nil {
				mapped = a.Value
			}
		case stun.AttrOtherAddress:
			if other == nil {
				other = a.Value
			}
		case attrChangedAddr:
			if changed == nil {
				changed = a.Value
			}
		case stun.AttrResponseOrigin:
			if origin == nil {
				origin = a.Value
			}
		case attrSourceAddr:
			if source == nil {
				source = a.Value
			}
		}
	}
	switch {
	case xorMapped != nil:
		if !parseAddrInto(&r.Mapped, xorMapped, m.TransactionID[:]) {
			return fmt.Errorf("XOR-MAPPED-ADDRESS %x: %w", xorMapped, ErrMalformed)
		}
		r.XOR = true
	case mapped != nil:
		if !parseAddrInto(&r.Mapped, mapped, nil) {
			return fmt.Errorf("MAPPED-ADDRESS %x: %w", mapped, ErrMalformed)
		}
	default:
		return fmt.Errorf("success response without mapped address: %w", ErrMalformed)
	}
	if other != nil {
		parseAddrInto(&r.Other, other, nil)
	} else if changed != nil {
		r.Legacy = parseAddrInto(&r.Other, changed, nil)
	}
	if origin == nil {
		origin = source
	}
	if origin != nil {
		parseAddrInto(&r.Origin, origin, nil)
	}
	return nil
}

func parseErrorCode(m *stun.Message) error {
	v, err := m.Get(stun.AttrErrorCode)
	if err != nil || len(v) < 4 {
		return fmt.Errorf("error response without ERROR-CODE: %w", ErrMalformed)
	}
	code := int(v[2]&0x7)*100 + int(v[3])
	reason := v[4:]
	if len(reason) > 128 {
		reason = reason[:128]
	}
	return &ServerError{Code: code, Reason: string(reason)}
}

// getTx takes a transaction from the free list or makes one; c.mu held.
func (c *Client) getTx() *transaction {
	if n := len(c.free); n > 0 {
		tx := c.free[n-1]
		c.free = c.free[:n-1]
		return tx
	}
	tx := &transaction{c: c, done: make(chan struct{}, 1)}
	tx.req.Raw = make([]byte, 0, 64)
	tx.resp.Raw = make([]byte, 0, 128)
	tx.timer = c.clock.AfterFunc(time.Hour, tx.fire)
	tx.timer.Stop()
	return tx
}

// finishLocked ends tx with err (nil: tx.res is the answer); c.mu held.
// It reports whether it ended tx (false: tx had already ended).
func (c *Client) finishLocked(tx *transaction, err error) bool {
	if tx.finished {
		return false
	}
	tx.finished = true
	tx.err = err
	delete(c.txs, tx.id)
	if !tx.timer.Stop() && tx.sent > 0 {
		// The timer callback may be running; it sees finished and returns,
		// but this transaction must not be reused under it.
		tx.stale = true
	}
	tx.done <- struct{}{}
	return true
}

// transact runs one transaction to server, sending on via. echo makes it
// the hairpin test: success is receiving the request itself. A non-nil p
// retransmits every o.RTO without doubling and counts the sends into p.
func (c *Client) transact(ctx context.Context, server netip.AddrPort, o BindingOptions, via net.PacketConn, echo bool, p *pace) (Response, error) {
	server = netip.AddrPortFrom(server.Addr().Unmap(), server.Port())
	if !server.IsValid() {
		return Response{}, fmt.Errorf("binding: invalid server address %v: %w", server, ErrNoServer)
	}
	if err := ctx.Err(); err != nil {
		return Response{}, fmt.Errorf("binding %v: %w (%w)", server, ErrNoResponse, err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return Response{}, fmt.Errorf("binding %v: %w", server, ErrClosed)
	}
	tx := c.getTx()
	for {
		_, _ = c.rng.Read(tx.id[:])
		if _, dup := c.txs[tx.id]; !dup {
			break
		}
	}
	tx.server, tx.via, tx.o, tx.echo, tx.pace = server, via, o, echo, p
	tx.finished, tx.err, tx.decodeErr, tx.malformed = false, nil, nil, nil
	tx.res = Response{}
	tx.rtoInit = c.cfg.RTO
	if o.RTO > 0 {
		tx.rtoInit = o.RTO
	}
	tx.rto = tx.rtoInit
	tx.rc = c.cfg.Rc
	if o.Attempts > 0 {
		tx.rc = o.Attempts
	}
	buildRequest(&tx.req, tx.id, o)
	tx.sent = 0
	tx.countSend()
	tx.last = c.clock.Now()
	c.txs[tx.id] = tx
	first := tx.rto
	if tx.rc == 1 {
		first = tx.rtoInit * time.Duration(c.cfg.Rm)
	}
	tx.timer.Reset(first)
	c.mu.Unlock()

	if err := callerconn.WriteTo(via, tx.req.Raw, server); err != nil {
		c.log.Debug("stun: send failed", "server", server, "err", err)
	}
	var ctxErr error
	select {
	case <-tx.done:
	case <-ctx.Done():
		c.mu.Lock()
		if c.finishLocked(tx, nil) {
			ctxErr = ctx.Err()
		}
		c.mu.Unlock()
		<-tx.done
	}
	c.mu.Lock()
	res, err := tx.res, tx.err
	if ctxErr != nil {
		err = fmt.Errorf("binding %v: %w (%w)", server, ErrNoResponse, ctxErr)
		if tx.malformed != nil {
			err = fmt.Errorf("binding %v: %w (%w)", server, tx.malformed, ctxErr)
		}
	}
	if !tx.stale {
		c.free = append(c.free, tx)
	}
	c.mu.Unlock()
	return res, err
}

// buildRequest encodes a Binding request with the given transaction ID and
// options into m, reusing m's buffer.
func buildRequest(m *stun.Message, id [12]byte, o BindingOptions) {
	m.Reset()
	m.Type = stun.BindingRequest
	m.TransactionID = id
	m.WriteHeader()
	if o.ChangeIP || o.ChangePort {
		var v [4]byte
		if o.ChangeIP {
			v[3] |= changeIPFlag
		}
		if o.ChangePort {
			v[3] |= changePortFlag
		}
		m.Add(stun.AttrChangeRequest, v[:])
	}
	if o.ResponsePort != 0 {
		var v [4]byte
		binary.BigEndian.PutUint16(v[:2], o.ResponsePort)
		m.Add(stun.AttrResponsePort, v[:])
	}
	if !o.NoFingerprint {
		addFingerprint(m)
	}
}
