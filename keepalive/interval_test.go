package keepalive

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTimingBase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		timing Timing
		stream bool
		want   time.Duration
	}{
		{"default datagram", Timing{}, false, DefaultDatagramInterval},
		{"default stream", Timing{}, true, DefaultStreamInterval},
		{"fixed", Timing{Interval: 7 * time.Second}, false, 7 * time.Second},
		{"fixed wins over lifetime", Timing{Interval: 7 * time.Second, Lifetime: 5 * time.Second}, false, 7 * time.Second},
		{"lifetime default fraction", Timing{Lifetime: 5 * time.Second}, false, 2500 * time.Millisecond},
		{"lifetime fraction", Timing{Lifetime: 60 * time.Second, Fraction: 0.8}, false, 48 * time.Second},
		{"lifetime margin", Timing{Lifetime: 30 * time.Second, Margin: 5 * time.Second}, false, 25 * time.Second},
		{"margin too big halves", Timing{Lifetime: 4 * time.Second, Margin: 5 * time.Second}, false, 2 * time.Second},
		{"negotiated alone", Timing{Negotiated: 15 * time.Second}, true, 15 * time.Second},
		{"negotiated alone, longer than the default", Timing{Negotiated: 30 * time.Second}, false, 30 * time.Second},
		{"negotiated longer than NAT needs", Timing{Lifetime: 20 * time.Second, Negotiated: 30 * time.Second}, false, 10 * time.Second},
		{"negotiated caps fixed", Timing{Interval: 60 * time.Second, Negotiated: 30 * time.Second}, false, 30 * time.Second},
		{"floor", Timing{Interval: time.Millisecond}, false, minInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.timing.Base(tt.stream))
		})
	}
}

func TestJitterBounds(t *testing.T) {
	t.Parallel()
	r := rand.NewPCG(1, 2)
	for _, d := range []time.Duration{time.Second, 2500 * time.Millisecond, 25 * time.Second, 120 * time.Second} {
		lo, hi := d, time.Duration(0)
		var sum time.Duration
		const n = 20000
		for range n {
			j := Jitter(d, r)
			require.GreaterOrEqual(t, j, d*8/10, "jitter below 80 %% of %v", d)
			require.LessOrEqual(t, j, d, "jitter above 100 %% of %v", d)
			lo, hi = min(lo, j), max(hi, j)
			sum += j
		}
		// Uniform on [0.8d, d]: the extremes are approached and the mean is 0.9d.
		require.Less(t, lo, d*81/100)
		require.Greater(t, hi, d*99/100)
		mean := sum / n
		require.InDelta(t, float64(d)*0.9, float64(mean), float64(d)*0.005)
	}
	require.Zero(t, Jitter(0, r))
	j := Jitter(time.Second, nil)
	require.True(t, j >= 800*time.Millisecond && j <= time.Second)
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base, max time.Duration
		failures  int
		want      time.Duration
	}{
		{time.Second, time.Minute, 0, time.Second},
		{time.Second, time.Minute, 1, time.Second},
		{time.Second, time.Minute, 2, 2 * time.Second},
		{time.Second, time.Minute, 4, 8 * time.Second},
		{time.Second, time.Minute, 7, time.Minute},
		{time.Second, time.Minute, 1000, time.Minute},
		{30 * time.Second, 1800 * time.Second, 6, 960 * time.Second},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, Backoff(tt.base, tt.max, tt.failures), "%+v", tt)
	}
}

func TestStringsAndJSON(t *testing.T) {
	t.Parallel()
	for k, want := range map[Kind]string{CRLF: "crlf", STUN: "stun", Options: "options", UDP: "udp", RTP: "rtp", 9: "Kind(9)"} {
		require.Equal(t, want, k.String())
	}
	for k, want := range map[EventKind]string{MappingChanged: "mapping-changed", FlowFailed: "flow-failed", Recovered: "recovered", 9: "EventKind(9)"} {
		require.Equal(t, want, k.String())
	}
	require.Equal(t, "PingKind(9)", PingKind(9).String())
	require.Equal(t, "ContactEventKind(9)", ContactEventKind(9).String())
	e := Event{Kind: FlowFailed, At: epoch, Misses: 2, Err: ErrNoAnswer}
	require.Equal(t, "flow-failed after 2 misses: keepalive: no answer", e.String())
	require.Equal(t, "recovered", Event{Kind: Recovered}.String())
	b, err := json.Marshal(e)
	require.NoError(t, err)
	require.JSONEq(t, `{"kind":"flow-failed","at":"2026-01-02T03:04:05Z","misses":2}`, string(b))
	ce := ContactEvent{Kind: Unreachable, Addr: netip.MustParseAddrPort("203.0.113.1:5060"), Misses: 3}
	require.Equal(t, "unreachable 203.0.113.1:5060 (3 misses)", ce.String())
	b, err = json.Marshal(ce)
	require.NoError(t, err)
	require.JSONEq(t, `{"kind":"unreachable","addr":"203.0.113.1:5060","misses":3}`, string(b))
}
