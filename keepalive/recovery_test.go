package keepalive

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRecovery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		r         Recovery
		failures  int
		allFailed bool
		ceiling   time.Duration
	}{
		{"all failed, first", Recovery{}, 1, true, 60 * time.Second},
		{"some ok, first", Recovery{}, 1, false, 180 * time.Second},
		{"all failed, third", Recovery{}, 3, true, 240 * time.Second},
		{"capped", Recovery{}, 10, true, 1800 * time.Second},
		{"capped, some ok", Recovery{}, 6, false, 1800 * time.Second},
		{"no failure yet", Recovery{}, 0, true, 30 * time.Second},
		{"lab numbers", Recovery{BaseAllFailed: time.Second, BaseSomeOK: 3 * time.Second, Max: 8 * time.Second}, 5, true, 8 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.ceiling, tt.r.Ceiling(tt.failures, tt.allFailed))
			src := rand.NewPCG(1, 2)
			lo, hi := tt.ceiling, time.Duration(0)
			for range 2000 {
				w := tt.r.Wait(tt.failures, tt.allFailed, src)
				require.GreaterOrEqual(t, w, tt.ceiling/2)
				require.LessOrEqual(t, w, tt.ceiling)
				lo, hi = min(lo, w), max(hi, w)
			}
			// the draws cover the range
			require.Less(t, lo, tt.ceiling/2+tt.ceiling/20)
			require.Greater(t, hi, tt.ceiling-tt.ceiling/20)
		})
	}
}
