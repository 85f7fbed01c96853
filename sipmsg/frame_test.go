package sipmsg

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNextFrame(t *testing.T) {
	t.Parallel()
	msg := "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\nl: 4\r\n\r\nbody"
	tests := []struct {
		name string
		in   string
		want Frame
		err  error
	}{
		{"empty", "", Frame{Need: 1}, nil},
		{"ping", "\r\n\r\nINVITE", Frame{Kind: FramePing, Len: 4}, nil},
		{"pong", "\r\nINVITE", Frame{Kind: FramePong, Len: 2}, nil},
		{"lone CR", "\r", Frame{Need: 1}, nil},
		{"bare LF", "\nX", Frame{Kind: FramePong, Len: 1}, nil},
		{"CR junk", "\rx", Frame{}, ErrMalformed},
		{"junk", "\x16\x03\x01", Frame{}, ErrMalformed},
		{"partial headers", msg[:30], Frame{Need: 1}, nil},
		{"partial body", msg[:len(msg)-3], Frame{Need: 3}, nil},
		{"headers only", msg[:len(msg)-4], Frame{Need: 4}, nil},
		{"whole", msg, Frame{Kind: FrameMessage, Len: len(msg)}, nil},
		{"two messages", msg + msg, Frame{Kind: FrameMessage, Len: len(msg)}, nil},
		{"no content-length", "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP x;branch=z9hG4bK1\r\n\r\nextra", Frame{Kind: FrameMessage, Len: 63}, nil},
		{"folded content-length line not counted", "OPTIONS sip:a@b SIP/2.0\r\nX: a\r\n Content-Length: 5\r\n\r\n", Frame{Kind: FrameMessage, Len: 53}, nil},
		{"bad content-length", "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n", Frame{}, ErrMalformed},
		{"huge content-length", "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999\r\n\r\n", Frame{}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := NextFrame([]byte(tt.in), 0)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, f)
		})
	}
}

func TestNextFrameBounds(t *testing.T) {
	t.Parallel()
	long := make([]byte, 200)
	copy(long, "OPTIONS sip:a@b SIP/2.0\r\nX: ")
	for i := 28; i < len(long); i++ {
		long[i] = 'a'
	}
	_, err := NextFrame(long, 100)
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = NextFrame([]byte("OPTIONS sip:a@b SIP/2.0\r\nl: 90\r\n\r\n"), 100)
	require.ErrorIs(t, err, ErrTooLarge)
}

// TestNextFrameStream feeds a stream byte by byte: every message comes out
// whole and scans.
func TestNextFrameStream(t *testing.T) {
	t.Parallel()
	msg := "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\nl: 4\r\n\r\nbody"
	stream := []byte("\r\n\r\n" + msg + "\r\n" + msg)
	var buf []byte
	var kinds []FrameKind
	for _, c := range stream {
		buf = append(buf, c)
		for {
			f, err := NextFrame(buf, 0)
			require.NoError(t, err)
			if f.Kind == FrameNone {
				require.Positive(t, f.Need)
				break
			}
			if f.Kind == FrameMessage {
				var m Message
				require.NoError(t, m.Parse(buf[:f.Len]))
				require.Equal(t, "body", string(m.Body()))
			}
			kinds = append(kinds, f.Kind)
			buf = buf[f.Len:]
		}
	}
	require.Equal(t, []FrameKind{FramePong, FramePong, FrameMessage, FramePong, FrameMessage}, kinds)
}

// TestNextFrameSmuggling: on a stream, where one message ends must be
// certain: two Content-Length values that differ (RFC 4475 §3.3.9) or a
// folded one end the stream instead of framing a smuggled request.
func TestNextFrameSmuggling(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"INVITE sip:a@b SIP/2.0\r\nl: 0\r\nContent-Length: 36\r\n\r\nOPTIONS sip:victim SIP/2.0\r\nl: 0\r\n\r\n",
		"INVITE sip:a@b SIP/2.0\r\nContent-Length:\r\n 36\r\n\r\n",
	} {
		_, err := NextFrame([]byte(in), 0)
		require.ErrorIs(t, err, ErrMalformed, in)
	}
	// the same length twice is one length
	f, err := NextFrame([]byte("INVITE sip:a@b SIP/2.0\r\nl: 0\r\nContent-Length: 0\r\n\r\nX"), 0)
	require.NoError(t, err)
	require.Equal(t, FrameMessage, f.Kind)
}
