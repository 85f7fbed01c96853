package sipmsg

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrSlowSender is returned by StreamReader.Next when a peer took longer
// than StreamConfig.FrameTimeout to complete a message it had started.
var ErrSlowSender = errors.New("sipmsg: message not completed in time")

// StreamConfig bounds a StreamReader. The zero value means MaxMessageSize
// and no deadlines.
type StreamConfig struct {
	// Max bounds one message (0: MaxMessageSize); the buffer never grows
	// past it.
	Max int
	// SetReadDeadline, when set, is called before each read with the time
	// the read must finish by (zero: none): net.Conn.SetReadDeadline.
	SetReadDeadline func(time.Time) error
	// FrameTimeout bounds the time from the first byte of a message to its
	// last (a slow sender, RFC 5626 leaves it to the server); 0: none.
	FrameTimeout time.Duration
	// IdleTimeout bounds the wait for the first byte of the next frame;
	// 0: none.
	IdleTimeout time.Duration
	// Pings says the peer sends RFC 5626 pings (the server side of a
	// flow): a CRLF at the end of what was read is held until the next
	// read tells a ping split by the network (CRLF, then CRLF) from a pong.
	Pings bool
	// Now is the time source of the deadlines; nil: time.Now. Deadlines
	// are on the socket, so this is the wall clock in production.
	Now func() time.Time
}

// StreamReader cuts a TCP or TLS stream into SIP messages and RFC 5626
// keep-alives with NextFrame, in a buffer bounded by StreamConfig.Max, and
// with optional deadlines against slow and idle peers. It allocates only
// when the buffer must grow for a larger message. Not safe for concurrent
// use.
type StreamReader struct {
	r       io.Reader
	cfg     StreamConfig
	buf     []byte
	start   int // first byte not yet returned
	end     int // end of the bytes read
	partial time.Time
	err     error // the read error, returned once the held bytes are out
}

// NewStreamReader returns a reader of r.
func NewStreamReader(r io.Reader, cfg StreamConfig) *StreamReader {
	if cfg.Max <= 0 {
		cfg.Max = MaxMessageSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &StreamReader{r: r, cfg: cfg, buf: make([]byte, min(4096, cfg.Max))}
}

// Next returns the next frame: a message, a ping (CRLF CRLF) or a pong
// (CRLF), with its bytes, valid until the next call. It returns the
// reader's error (io.EOF when the peer closed between frames,
// io.ErrUnexpectedEOF inside one), ErrSlowSender, or an error wrapping
// ErrMalformed or ErrTooLarge for a stream that is not SIP; the stream
// should then be closed.
func (s *StreamReader) Next() (FrameKind, []byte, error) {
	for {
		if s.end > s.start {
			f, err := NextFrame(s.buf[s.start:s.end], s.cfg.Max)
			if err != nil {
				return FrameNone, nil, fmt.Errorf("read SIP stream: %w", err)
			}
			if f.Kind != FrameNone && !s.hold(f) {
				b := s.buf[s.start : s.start+f.Len]
				s.start += f.Len
				s.partial = time.Time{}
				return f.Kind, b, nil
			}
			switch {
			case f.Kind != FrameNone:
				s.partial = time.Time{} // a held keep-alive: idle
			case s.partial.IsZero():
				s.partial = s.cfg.Now()
			}
			s.room(max(f.Need, 2))
		} else {
			s.start, s.end = 0, 0
		}
		if s.err != nil {
			return FrameNone, nil, s.err
		}
		if err := s.deadline(); err != nil {
			return FrameNone, nil, err
		}
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err != nil && n == 0 {
			if !s.partial.IsZero() {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				} else if isTimeout(err) && s.cfg.FrameTimeout > 0 {
					err = fmt.Errorf("%w (%v): %w", ErrSlowSender, s.cfg.FrameTimeout, err)
				}
				return FrameNone, nil, err
			}
			s.err = err // held keep-alives go out first
		}
	}
}

// hold reports whether pong f must wait for more bytes: the peer sends
// pings, nothing or a lone CR follows it, and the stream is still open.
func (s *StreamReader) hold(f Frame) bool {
	if !s.cfg.Pings || f.Kind != FramePong || s.err != nil {
		return false
	}
	rest := s.buf[s.start+f.Len : s.end]
	return len(rest) == 0 || (len(rest) == 1 && rest[0] == '\r')
}

// Buffered returns how many bytes were read but not yet returned.
func (s *StreamReader) Buffered() int { return s.end - s.start }

// room makes space for at least need more bytes after s.end, moving the
// pending bytes to the front and growing the buffer up to Max (plus the
// largest keep-alive, so a full buffer is always a decision for NextFrame).
func (s *StreamReader) room(need int) {
	if s.start > 0 {
		s.end = copy(s.buf, s.buf[s.start:s.end])
		s.start = 0
	}
	if len(s.buf)-s.end >= need || len(s.buf) >= s.cfg.Max {
		return
	}
	n := min(max(2*len(s.buf), s.end+need), s.cfg.Max)
	nb := make([]byte, n)
	copy(nb, s.buf[:s.end])
	s.buf = nb
}

func (s *StreamReader) deadline() error {
	if s.cfg.SetReadDeadline == nil {
		return nil
	}
	var d time.Time
	switch {
	case !s.partial.IsZero() && s.cfg.FrameTimeout > 0:
		d = s.partial.Add(s.cfg.FrameTimeout)
	case s.partial.IsZero() && s.cfg.IdleTimeout > 0:
		d = s.cfg.Now().Add(s.cfg.IdleTimeout)
	}
	return s.cfg.SetReadDeadline(d)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
