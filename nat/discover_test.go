package nat

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDiscoverLoopbackNoNAT(t *testing.T) {
	t.Parallel()
	srv := startServer(t, true)
	conn := listenUDP(t, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Discover(ctx, conn, srv.Addrs()[0])
	require.NoError(t, err)
	t.Log("\n" + res.String())
	require.Equal(t, MethodRFC5780, res.Method)
	require.Equal(t, None, res.Mapping)
	require.Equal(t, None, res.Filtering)
	require.Equal(t, OpenInternet, res.Classic)
	require.Equal(t, addrPortOf(conn.LocalAddr()), res.Public)
	require.True(t, res.SIP.STUNContact)
	require.False(t, res.SIP.MediaRelay)
}

func TestDiscoverNoAnswer(t *testing.T) {
	t.Parallel()
	dead := listenUDP(t, "127.0.0.1:0") // never answers
	conn := listenUDP(t, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Discover(ctx, conn, addrPortOf(dead.LocalAddr()))
	require.ErrorIs(t, err, ErrNoResponse)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second)
	require.Equal(t, Blocked, res.Mapping)
	require.Equal(t, UDPBlocked, res.Classic)
	require.False(t, errors.Is(err, ErrMalformed))
}
