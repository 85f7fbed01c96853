package keepalive

import (
	"fmt"
	"io"

	"github.com/sipnat/sipnat/sipmsg"
)

// ReadStream reads a TCP or TLS flow for callers that let the Keeper own
// the read: it cuts the stream into SIP messages and keep-alives with
// sipmsg.NextFrame, takes a pong (CRLF) as the answer to a CRLF ping,
// answers a ping (CRLF CRLF) from the peer with a pong through
// Config.Send (RFC 5626 §4.4.1), and hands every SIP message to onMessage;
// b is valid only during that call. Messages are bounded by
// sipmsg.MaxMessageSize. ReadStream returns r's error (io.EOF when the peer
// closed) or, for a stream that is not SIP, an error wrapping
// sipmsg.ErrMalformed or sipmsg.ErrTooLarge; the flow should then be closed.
func (k *Keeper) ReadStream(r io.Reader, onMessage func(b []byte)) error {
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), 2*cap(buf))
			copy(nb, buf)
			buf = nb
		}
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		for len(buf) > 0 {
			f, err := sipmsg.NextFrame(buf, sipmsg.MaxMessageSize)
			if err != nil {
				return fmt.Errorf("keepalive: read stream: %w", err)
			}
			if f.Kind == sipmsg.FrameNone {
				break
			}
			switch f.Kind {
			case sipmsg.FramePong:
				k.Answer()
			case sipmsg.FramePing:
				k.pong()
			case sipmsg.FrameMessage:
				if onMessage != nil {
					onMessage(buf[:f.Len])
				}
			}
			buf = buf[:copy(buf, buf[f.Len:])]
		}
		if rerr != nil {
			return rerr
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
