package rtpengine

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSet: calls spread over the instances by Call-ID; a call's answer and
// delete go to the instance that took its offer; an instance that does not
// answer is skipped (failover) and disabled; delete forgets the call.
func TestSet(t *testing.T) {
	noLeak(t)
	var got [2]atomic.Int64
	var silent atomic.Bool
	mk := func(i int) *fakeNG {
		return newFakeNG(t, func(cmd string, v Value) []byte {
			if i == 0 && silent.Load() {
				return nil
			}
			got[i].Add(1)
			return echoSDP(cmd, v)
		})
	}
	a, b := mk(0), mk(1)
	c := NewClient(listen(t), ClientConfig{RTO: 150 * time.Millisecond, Tries: 2}) // a live instance answers well within it, even on a loaded machine
	defer c.Close()
	s, err := NewSet(SetConfig{Client: c, Instances: []netip.AddrPort{a.addr, b.addr}, DisableFor: time.Hour})
	require.NoError(t, err)
	ctx := context.Background()
	offer := func(id string) error {
		_, err := s.Do(ctx, nil, &Request{Command: Offer, CallID: []byte(id), FromTag: []byte("f"), SDP: []byte("v=0")})
		return err
	}
	for i := 0; i < 20; i++ {
		require.NoError(t, offer(fmt.Sprint("call", i)))
	}
	require.Positive(t, got[0].Load(), "calls spread")
	require.Positive(t, got[1].Load(), "calls spread")
	require.Equal(t, 20, s.Stats().Calls)

	// the answer and delete follow the offer, whatever the counts
	for i := 0; i < 20; i++ {
		id := []byte(fmt.Sprint("call", i))
		before := [2]int64{got[0].Load(), got[1].Load()}
		_, err := s.Do(ctx, nil, &Request{Command: Answer, CallID: id, FromTag: []byte("f"), ToTag: []byte("t"), SDP: []byte("v=0")})
		require.NoError(t, err)
		_, err = s.Do(ctx, nil, &Request{Command: Delete, CallID: id, FromTag: []byte("f")})
		require.NoError(t, err)
		d0, d1 := got[0].Load()-before[0], got[1].Load()-before[1]
		require.True(t, d0 == 2 && d1 == 0 || d0 == 0 && d1 == 2, "call %s split: %d/%d", id, d0, d1)
	}
	require.Zero(t, s.Stats().Calls)

	// instance 0 stops answering: every new call lands on 1
	silent.Store(true)
	for i := 0; i < 10; i++ {
		require.NoError(t, offer(fmt.Sprint("late", i)))
	}
	st := s.Stats()
	require.True(t, st.Instances[0].Disabled)
	require.Equal(t, uint64(1), st.Instances[0].Timeouts, "disabled after one timeout, skipped afterwards")
	require.Equal(t, uint64(1), st.Failovers)

	// a call living on a dead instance: its answer fails (no other has it)
	silent.Store(false)
	var onA string
	for i := 0; onA == ""; i++ {
		id := fmt.Sprint("x", i)
		s.mu.Lock()
		s.inst[0].disabledUntil = time.Time{}
		s.mu.Unlock()
		n0 := got[0].Load()
		require.NoError(t, offer(id))
		if got[0].Load() > n0 {
			onA = id
		}
	}
	silent.Store(true)
	_, err = s.Do(ctx, nil, &Request{Command: Answer, CallID: []byte(onA), FromTag: []byte("f"), ToTag: []byte("t"), SDP: []byte("v=0")})
	require.ErrorIs(t, err, ErrNoInstance)
	require.ErrorIs(t, err, ErrTimeout)
	// its re-offer moves to the live instance
	require.NoError(t, offer(onA))

	// every instance down
	bad, err := NewSet(SetConfig{Client: c, Instances: []netip.AddrPort{a.addr}})
	require.NoError(t, err)
	require.ErrorIs(t, offer2(ctx, bad), ErrNoInstance)
	require.Equal(t, []error{nil, nil}, func() []error {
		silent.Store(false)
		return s.Ping(ctx)
	}())
	require.False(t, s.Stats().Instances[0].Disabled, "a ping answer enables again")

	_, err = NewSet(SetConfig{Client: c})
	require.Error(t, err)
}

func offer2(ctx context.Context, s *Set) error {
	_, err := s.Do(ctx, nil, &Request{Command: Offer, CallID: []byte("z"), FromTag: []byte("f"), SDP: []byte("v=0")})
	return err
}

func TestParseInstances(t *testing.T) {
	t.Parallel()
	got, err := ParseInstances("203.0.113.2:2223, [2001:db8::1]:2224")
	require.NoError(t, err)
	require.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("203.0.113.2:2223"), netip.MustParseAddrPort("[2001:db8::1]:2224")}, got)
	for _, bad := range []string{"", "nope", "203.0.113.2", "203.0.113.2:0", "a:1,"} {
		_, err := ParseInstances(bad)
		require.Error(t, err, bad)
	}
}
