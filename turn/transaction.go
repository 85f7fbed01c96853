package turn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pion/stun/v2"

	"github.com/sipnat/sipnat/clock"
)

// streamTimeout is how long a request waits for its answer over TCP or TLS
// (RFC 8489 section 6.2.2: 39.5 s).
const streamTimeout = 39500 * time.Millisecond

// tx is one request in flight.
type tx struct {
	raw      []byte
	done     chan struct{}
	res      *stun.Message
	err      error
	timer    clock.Timer
	sent     int
	rto      time.Duration
	finished bool
}

// transact sends req (encoded) to the server and waits for its answer,
// retransmitting over UDP. An error response comes back as a message, not
// an error; errors are for no answer, ctx and Close.
func (c *Client) transact(ctx context.Context, req *stun.Message) (*stun.Message, error) {
	t := &tx{raw: append([]byte(nil), req.Raw...), done: make(chan struct{}), rto: c.cfg.RTO}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.txs[req.TransactionID] = t
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.txs, req.TransactionID)
		if t.timer != nil {
			t.timer.Stop()
		}
		c.mu.Unlock()
	}()

	if err := c.writeRaw(t.raw); err != nil {
		return nil, fmt.Errorf("send %s: %w", req.Type.Method, err)
	}
	c.mu.Lock()
	t.sent = 1
	if c.stream {
		t.timer = c.clock.AfterFunc(streamTimeout, func() { c.finish(t, nil, ErrUnreachable) })
	} else {
		t.timer = c.clock.AfterFunc(t.rto, func() { c.retransmit(t) })
	}
	c.mu.Unlock()

	select {
	case <-t.done:
	case <-ctx.Done():
		c.finish(t, nil, fmt.Errorf("%w: %w", ErrUnreachable, ctx.Err()))
		<-t.done
	}
	return t.res, t.err
}

// retransmit runs on t's timer: it sends the request again with a doubled
// timeout, or fails the transaction after the last wait (Rm = 16 RTOs after
// the last of Attempts sends, as RFC 8489 says).
func (c *Client) retransmit(t *tx) {
	c.mu.Lock()
	if t.finished {
		c.mu.Unlock()
		return
	}
	if t.sent >= c.cfg.Attempts {
		c.mu.Unlock()
		c.finish(t, nil, ErrUnreachable)
		return
	}
	t.sent++
	t.rto *= 2
	last := t.sent == c.cfg.Attempts
	wait := t.rto
	if last {
		wait = 16 * c.cfg.RTO
	}
	t.timer = c.clock.AfterFunc(wait, func() { c.retransmit(t) })
	c.mu.Unlock()
	if err := c.writeRaw(t.raw); err != nil {
		c.log.Debug("turn: retransmission failed", "err", err)
	}
}

func (c *Client) finish(t *tx, res *stun.Message, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finishLocked(t, res, err)
}

func (c *Client) finishLocked(t *tx, res *stun.Message, err error) {
	if t.finished {
		return
	}
	t.finished = true
	t.res, t.err = res, err
	close(t.done)
}

// handleResponse takes a STUN response or error response from the server.
// It reports false when the message answers none of the client's requests
// (it then belongs to another STUN client on the socket).
func (c *Client) handleResponse(b []byte) bool {
	var id [12]byte
	copy(id[:], b[8:headerSize])
	c.mu.Lock()
	t := c.txs[id]
	c.mu.Unlock()
	if t == nil {
		return false
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		c.log.Debug("turn: malformed answer", "err", err)
		return true
	}
	c.finish(t, m, nil)
	return true
}

// request sends a request of method with attrs, adding the long-term
// credentials once known, and handles the authentication dance: a first 401
// gives realm and nonce, 438 Stale Nonce a new nonce (retried up to three
// times). It returns the success response, or an *Error for an error
// response (401 after credentials is ErrUnauthorized).
func (c *Client) request(ctx context.Context, method stun.Method, attrs ...stun.Setter) (*stun.Message, error) {
	retriedAuth := false
	for stale := 0; ; {
		c.mu.Lock()
		integrity, username, realm, nonce := c.integrity, c.cfg.Username, c.realm, c.nonce
		c.mu.Unlock()
		setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		setters = append(setters, attrs...)
		if integrity != nil {
			setters = append(setters, stun.NewUsername(username), stun.NewRealm(realm), stun.NewNonce(nonce), integrity)
		}
		setters = append(setters, stun.Fingerprint)
		req, err := stun.Build(setters...)
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", method, err)
		}
		res, err := c.transact(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("%s to %s: %w", method, c.cfg.Server, err)
		}
		if res.Type.Class == stun.ClassSuccessResponse {
			if integrity != nil {
				if err := integrity.Check(res); err != nil {
					return nil, fmt.Errorf("%s: %w: MESSAGE-INTEGRITY: %w", method, ErrMalformed, err)
				}
			}
			return res, nil
		}
		var code stun.ErrorCodeAttribute
		if err := code.GetFrom(res); err != nil {
			return nil, fmt.Errorf("%s: %w: error response without ERROR-CODE", method, ErrMalformed)
		}
		switch {
		case code.Code == stun.CodeUnauthorized && (integrity == nil || !retriedAuth && nonceChanged(res, nonce)):
			// the first challenge, or a server that rotated its nonce with 401 (RFC 5389 style)
			if !c.learnAuth(res) {
				return nil, fmt.Errorf("%s: %w: 401 without REALM and NONCE", method, ErrMalformed)
			}
			retriedAuth = integrity != nil
			continue
		case code.Code == stun.CodeStaleNonce && stale < 3:
			stale++
			c.log.Debug("turn: 438 stale nonce, retrying with the new one", "method", method.String())
			if !c.learnAuth(res) {
				return nil, fmt.Errorf("%s: %w: 438 without NONCE", method, ErrMalformed)
			}
			continue
		}
		return nil, &Error{Method: method.String(), Code: int(code.Code), Reason: strings.TrimRight(string(code.Reason), " \x00")}
	}
}

func nonceChanged(res *stun.Message, nonce string) bool {
	var n stun.Nonce
	return n.GetFrom(res) == nil && string(n) != nonce
}

// learnAuth takes REALM and NONCE from a 401 or 438 and makes the long-term
// key.
func (c *Client) learnAuth(res *stun.Message) bool {
	var realm stun.Realm
	var nonce stun.Nonce
	if nonce.GetFrom(res) != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if realm.GetFrom(res) == nil {
		c.realm = string(realm)
	} else if c.realm == "" {
		return false
	}
	c.nonce = string(nonce)
	c.integrity = stun.NewLongTermIntegrity(c.cfg.Username, c.realm, c.cfg.Password)
	return true
}

// isCode tells whether err is a server error response with code.
func isCode(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
