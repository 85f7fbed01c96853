package keepalive

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/sipmsg"
)

const streamMsg = "OPTIONS sip:alice@192.168.1.10 SIP/2.0\r\nVia: SIP/2.0/TCP 203.0.113.2;branch=z9hG4bK1\r\nContent-Length: 5\r\n\r\nhello"

func TestReadStream(t *testing.T) {
	t.Parallel()
	for _, oneByte := range []bool{false, true} {
		k, clk, w, ev := newKeeper(t, KeeperConfig{Kind: CRLF, Timing: Timing{Interval: 30 * time.Second, NoJitter: true}})
		k.Start()
		clk.Advance(30 * time.Second) // ping sent, pong awaited
		require.Equal(t, 1, w.count())
		in := streamMsg + "\r\n" + "\r\n\r\n" + streamMsg
		var r io.Reader = strings.NewReader(in)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		var msgs []string
		err := k.ReadStream(r, func(b []byte) { msgs = append(msgs, string(b)) })
		require.ErrorIs(t, err, io.EOF)
		require.Equal(t, []string{streamMsg, streamMsg}, msgs)
		if !oneByte { // a ping split by the network reads as two pongs (sipmsg.NextFrame)
			require.Equal(t, 2, w.count())
			require.Equal(t, "\r\n", string(w.pkts[1]), "the peer's ping is answered with a pong")
		}
		clk.Advance(DefaultTimeout)
		require.Empty(t, ev.kinds(), "the pong answered the ping")
		require.False(t, k.Failed())
	}
}

func TestReadStreamErrors(t *testing.T) {
	t.Parallel()
	k, _, _, _ := newKeeper(t, KeeperConfig{Kind: CRLF})
	err := k.ReadStream(strings.NewReader("\x00garbage"), nil)
	require.ErrorIs(t, err, sipmsg.ErrMalformed)
	big := "OPTIONS sip:a SIP/2.0\r\nContent-Length: 99999999\r\n\r\n"
	err = k.ReadStream(strings.NewReader(big), nil)
	require.Error(t, err)
	require.False(t, errors.Is(err, io.EOF))
	// A message that never ends is bounded by sipmsg.MaxMessageSize.
	endless := io.MultiReader(strings.NewReader("OPTIONS sip:a SIP/2.0\r\n"), &repeatReader{b: []byte("X-Pad: aaaaaaaaaaaaaaaa\r\n")})
	err = k.ReadStream(endless, nil)
	require.ErrorIs(t, err, sipmsg.ErrTooLarge)
}

type repeatReader struct{ b []byte }

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], r.b)
	}
	return n, nil
}

func FuzzReadStream(f *testing.F) {
	f.Add([]byte(streamMsg+"\r\n\r\n\r\n"), uint8(3))
	f.Add([]byte("\r\n\r\n\r"), uint8(1))
	f.Add([]byte("REGISTER sip:x SIP/2.0\r\nl: 2\r\n\r\nab\r\n"), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		k, err := NewKeeper(KeeperConfig{Kind: CRLF, Send: func([]byte) error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = bytes.NewReader(in)
		if chunk%2 == 1 {
			r = iotest.HalfReader(r)
		}
		total := 0
		err = k.ReadStream(r, func(b []byte) {
			if len(b) == 0 {
				t.Fatal("empty message")
			}
			total += len(b)
		})
		if err == nil {
			t.Fatal("ReadStream returned nil")
		}
		if total > len(in) {
			t.Fatalf("handed out %d bytes of %d", total, len(in))
		}
	})
}
