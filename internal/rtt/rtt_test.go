package rtt_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/rtt"
)

func TestEstimator(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name    string
		samples []time.Duration
		lo, hi  time.Duration
		want    time.Duration
	}{
		{"no sample: the bound", nil, 10 * ms, 500 * ms, 500 * ms},
		{"LAN: the floor", []time.Duration{300 * time.Microsecond}, 10 * ms, 500 * ms, 10 * ms},
		{"one sample: 3 RTT", []time.Duration{40 * ms}, 10 * ms, 500 * ms, 120 * ms},
		{"bounded above", []time.Duration{300 * ms}, 10 * ms, 500 * ms, 500 * ms},
		{"steady samples narrow the variance", []time.Duration{40 * ms, 40 * ms, 40 * ms}, 10 * ms, 500 * ms, 85 * ms}, // RTTVAR 20, 15, 11.25 ms
		{"granularity when the variance is gone", []time.Duration{0, 0}, 0, time.Second, ms},
		{"RFC 6298's 1 s floor", []time.Duration{ms}, time.Second, 10 * time.Second, time.Second},
		{"a slow answer raises it", []time.Duration{ms, ms, 2 * time.Second}, time.Second, 10 * time.Second, 2251 * ms}, // SRTT 250.875 ms, RTTVAR 500.03125 ms
		{"floor above the bound: the bound", []time.Duration{ms}, time.Second, 500 * ms, 500 * ms},
		{"negative sample counts as zero", []time.Duration{-ms}, 0, time.Second, ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var e rtt.Estimator
			for _, s := range tt.samples {
				e.Add(s)
			}
			require.Equal(t, len(tt.samples), e.Samples())
			require.Equal(t, tt.want, e.RTO(tt.lo, tt.hi))
		})
	}
}
