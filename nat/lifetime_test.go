package nat

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSearchLifetime(t *testing.T) {
	t.Parallel()
	grid := []time.Duration{0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	tests := []struct {
		name     string
		lifetime time.Duration // bindings idle longer than this are gone
		control  probeState
		failed   time.Duration // this probe could not run
		want     lifetimeResult
	}{
		{name: "gone between 4 and 8 s", lifetime: 5 * time.Second, want: lifetimeResult{alive: 4 * time.Second, gone: 8 * time.Second}},
		{name: "gone after 1 s", lifetime: 1500 * time.Millisecond, want: lifetimeResult{alive: time.Second, gone: 2 * time.Second}},
		{name: "longer than the grid", lifetime: time.Hour, want: lifetimeResult{alive: 16 * time.Second}},
		{name: "control fails: RESPONSE-PORT unsupported", lifetime: time.Hour, control: probeGone},
		{name: "a probe that could not run is skipped", lifetime: 5 * time.Second, failed: 4 * time.Second,
			want: lifetimeResult{alive: 2 * time.Second, gone: 8 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Probes answer at once, except those beyond the first gone one,
			// which block until cancelled: the search must not wait for them.
			probe := func(ctx context.Context, idle time.Duration) probeState {
				switch {
				case idle == 0 && tt.control != probePending:
					return tt.control
				case idle == tt.failed && idle != 0:
					return probeFailed
				case idle <= tt.lifetime:
					return probeAlive
				}
				for _, g := range grid {
					if g > tt.lifetime {
						if idle == g {
							return probeGone
						}
						break
					}
				}
				<-ctx.Done()
				return probeFailed
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			require.Equal(t, tt.want, searchLifetime(ctx, grid, probe))
			require.NoError(t, ctx.Err(), "the search waited for cancelled probes")
		})
	}
}
