package keepalive

import (
	"errors"
	"fmt"
	"io"

	"github.com/sipnat/sipnat/sipmsg"
)

// ReadStream reads a TCP or TLS flow for callers that let the Keeper own
// the read: it cuts the stream into SIP messages and keep-alives with
// sipmsg.NextFrame, takes a pong (CRLF) as the answer to a CRLF ping,
// answers a ping (CRLF CRLF) from the peer with a pong through
// KeeperConfig.Send (RFC 5626 §4.4.1), and hands every SIP message to onMessage;
// b is valid only during that call. Messages are bounded by
// sipmsg.MaxMessageSize. ReadStream returns r's error (io.EOF when the peer
// closed) or, for a stream that is not SIP, an error wrapping
// sipmsg.ErrMalformed or sipmsg.ErrTooLarge; the flow should then be closed.
func (k *Keeper) ReadStream(r io.Reader, onMessage func(b []byte)) error {
	s := sipmsg.NewStreamReader(r, sipmsg.StreamConfig{})
	for {
		kind, b, err := s.Next()
		if err != nil {
			if errors.Is(err, sipmsg.ErrMalformed) || errors.Is(err, sipmsg.ErrTooLarge) {
				return fmt.Errorf("keepalive: %w", err)
			}
			return err
		}
		switch kind {
		case sipmsg.FramePong:
			k.Answer()
		case sipmsg.FramePing:
			k.pong()
		case sipmsg.FrameMessage:
			if onMessage != nil {
				onMessage(b)
			}
		}
	}
}

// pong answers the peer's ping on the flow.
func (k *Keeper) pong() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cfg.Send != nil {
		_ = k.cfg.Send(crlfPong)
	}
}
