package sipmsg

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
)

const streamMsg = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\nContent-Length: 4\r\n\r\nbody"

type frameOut struct {
	kind FrameKind
	b    string
}

// readAll reads frames until an error and returns them with the error.
func readAll(s *StreamReader) ([]frameOut, error) {
	var out []frameOut
	for {
		k, b, err := s.Next()
		if err != nil {
			return out, err
		}
		out = append(out, frameOut{k, string(b)})
	}
}

func TestStreamReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		oneByt bool // deliver one byte per Read (partial frames)
		pings  bool
		max    int
		want   []frameOut
		err    error
	}{
		{"message and keep-alives", "\r\n\r\n" + streamMsg + "\r\n", false, false, 0,
			[]frameOut{{FramePing, "\r\n\r\n"}, {FrameMessage, streamMsg}, {FramePong, "\r\n"}}, io.EOF},
		{"byte by byte, pings held whole", streamMsg + "\r\n\r\n" + streamMsg + "\r\n", true, true, 0,
			[]frameOut{{FrameMessage, streamMsg}, {FramePing, "\r\n\r\n"}, {FrameMessage, streamMsg}, {FramePong, "\r\n"}}, io.EOF},
		{"byte by byte, a client's view", streamMsg + "\r\n\r\n" + streamMsg, true, false, 0,
			[]frameOut{{FrameMessage, streamMsg}, {FramePong, "\r\n"}, {FramePong, "\r\n"}, {FrameMessage, streamMsg}}, io.EOF},
		{"whole, pings", streamMsg + "\r\n\r\n" + streamMsg, false, true, 0,
			[]frameOut{{FrameMessage, streamMsg}, {FramePing, "\r\n\r\n"}, {FrameMessage, streamMsg}}, io.EOF},
		{"cut inside a message", streamMsg[:40], false, false, 0, nil, io.ErrUnexpectedEOF},
		{"huge Content-Length", "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 9999999\r\n\r\n", false, false, 0, nil, ErrMalformed},
		{"body over max", "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 500\r\n\r\n", false, false, 512, nil, ErrTooLarge},
		{"endless headers", "OPTIONS sip:a@b SIP/2.0\r\n" + strings.Repeat("X-A: b\r\n", 200), true, false, 512, nil, ErrTooLarge},
		{"not SIP", "\x16\x03\x01\x02\x00", false, false, 0, nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r io.Reader = strings.NewReader(tt.in)
			if tt.oneByt {
				r = iotest.OneByteReader(r)
			}
			s := NewStreamReader(r, StreamConfig{Max: tt.max, Pings: tt.pings})
			got, err := readAll(s)
			require.ErrorIs(t, err, tt.err)
			require.Equal(t, tt.want, got)
			if tt.max > 0 {
				require.LessOrEqual(t, len(s.buf), tt.max, "buffer bounded by Max")
			}
		})
	}
}

// A CRLF flood is read in a fixed buffer: memory stays bounded, each
// keep-alive is a frame the caller can count and act on.
func TestStreamReaderCRLFFlood(t *testing.T) {
	t.Parallel()
	flood := bytes.Repeat([]byte("\r\n"), 1<<20)
	s := NewStreamReader(bytes.NewReader(flood), StreamConfig{Max: 1024})
	n := 0
	for {
		_, _, err := s.Next()
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
		n++
	}
	require.Equal(t, 1<<20/2, n)
	require.LessOrEqual(t, len(s.buf), 1024)
}

// A peer that starts a message and stalls gets ErrSlowSender after
// FrameTimeout; an idle one a timeout after IdleTimeout.
func TestStreamReaderDeadlines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write string
		cfg   StreamConfig
		slow  bool
	}{
		{"slow sender", streamMsg[:30], StreamConfig{FrameTimeout: 50 * time.Millisecond}, true},
		{"idle", "", StreamConfig{IdleTimeout: 50 * time.Millisecond}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			go func() { _, _ = b.Write([]byte(tt.write)) }()
			cfg := tt.cfg
			cfg.SetReadDeadline = a.SetReadDeadline
			_, _, err := NewStreamReader(a, cfg).Next()
			require.Error(t, err)
			var ne net.Error
			require.True(t, errors.As(err, &ne) && ne.Timeout(), "timeout: %v", err)
			require.Equal(t, tt.slow, errors.Is(err, ErrSlowSender), "%v", err)
		})
	}
}

func TestStreamReaderAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations differ under -race")
	}
	in := []byte(strings.Repeat(streamMsg+"\r\n\r\n", 64))
	r := bytes.NewReader(in)
	s := NewStreamReader(r, StreamConfig{})
	allocs := testing.AllocsPerRun(20, func() {
		r.Reset(in)
		s.start, s.end, s.err = 0, 0, nil
		for {
			if _, _, err := s.Next(); err != nil {
				break
			}
		}
	})
	require.Zero(t, allocs)
}
