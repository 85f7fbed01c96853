package turn_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/turn"
)

// streamClient dials the fake server over TCP, allocates and binds
// fakePeer's channel. Its events go to events.
func streamClient(t testing.TB, s *fakeServer, events func(turn.Event)) *turn.Client {
	cfg := turn.Config{Server: s.listenStream(t), Username: fakeUser, Password: fakePass, Transport: turn.TCP,
		KeepAlive: -1, OnEvent: events}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := turn.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Allocate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Permit(ctx, fakePeer); err != nil {
		t.Fatal(err)
	}
	return c
}

// A server that stops reading the stream (a NAT on the way forgot it and
// drops its segments): Send fills the stream's buffer, the write that does
// not go through within StreamWriteTimeout fails instead of blocking, the
// stream is given up (the allocation lost, with the write as the reason),
// and Close returns.
func TestStreamStalledWrite(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	var mu sync.Mutex
	var lost []turn.Event
	c := streamClient(t, s, func(e turn.Event) {
		if e.Kind == turn.EventLost {
			mu.Lock()
			lost = append(lost, e)
			mu.Unlock()
		}
	})
	pkt := make([]byte, 1200)
	pkt[0] = 0x80
	require.NoError(t, c.Send(pkt, fakePeer))
	eventually(t, 5*time.Second, func() bool { return s.streamIn.Load() >= 1 }, "the server reads ChannelData")
	s.stalled.Store(true)

	failed := make(chan error, 1)
	go func() {
		for {
			if err := c.Send(pkt, fakePeer); err != nil {
				failed <- err
				return
			}
		}
	}()
	select {
	case err := <-failed:
		t.Logf("Send failed: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Send still blocked on the full stream")
	}
	eventually(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(lost) > 0 }, "the allocation is lost")
	mu.Lock()
	require.ErrorContains(t, lost[0].Err, "write: ")
	mu.Unlock()
	require.NoError(t, c.Close())
}
