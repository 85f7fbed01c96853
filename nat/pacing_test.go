package nat

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/clock"
)

// TestAwait drives await with scripted probes and controls on a fake clock:
// silence counts only after the probes' rounds and the control round trips,
// an answer during the controls counts, and ProbeTimeout bounds it all.
func TestAwait(t *testing.T) {
	t.Parallel()
	errSilent := errors.New("silent")
	// silentProbe reaches its rounds at once and then waits for ctx.
	silentProbe := func(ctx context.Context, p *pace) error {
		close(p.reached)
		<-ctx.Done()
		return errSilent
	}
	tests := []struct {
		name       string
		probes     func(answer <-chan struct{}) []probe
		answerAt   int  // close answer on this control call (0: never)
		advance    bool // advance the clock past ProbeTimeout once the probes run (else by minSilence)
		early      bool // may return before the clock moves (every probe answered)
		wantErr    []bool
		wantCtrls  int32
		wantAtMost bool // wantCtrls is an upper bound
	}{
		{
			name:      "silent probe: filtered after the control rounds",
			probes:    func(<-chan struct{}) []probe { return []probe{silentProbe} },
			wantErr:   []bool{true},
			wantCtrls: controlRounds,
		},
		{
			name: "answered at once: no controls",
			probes: func(<-chan struct{}) []probe {
				return []probe{func(context.Context, *pace) error { return nil }}
			},
			wantErr:   []bool{false},
			wantCtrls: 0,
			early:     true,
		},
		{
			name: "answer arrives during the controls",
			probes: func(answer <-chan struct{}) []probe {
				return []probe{func(ctx context.Context, p *pace) error {
					close(p.reached)
					select {
					case <-answer:
						return nil
					case <-ctx.Done():
						return errSilent
					}
				}}
			},
			answerAt:   2,
			wantErr:    []bool{false},
			wantCtrls:  controlRounds,
			wantAtMost: true,
		},
		{
			name: "one answered, one silent",
			probes: func(<-chan struct{}) []probe {
				return []probe{func(context.Context, *pace) error { return nil }, silentProbe}
			},
			wantErr:   []bool{false, true},
			wantCtrls: controlRounds,
		},
		{
			name: "rounds never reached: ProbeTimeout ends it, no controls",
			probes: func(<-chan struct{}) []probe {
				return []probe{func(ctx context.Context, _ *pace) error { <-ctx.Done(); return errSilent }}
			},
			advance:   true,
			wantErr:   []bool{true},
			wantCtrls: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(time.Unix(0, 0))
			d := &discoverer{cfg: DiscoverConfig{ProbeTimeout: time.Second}, clock: clk}
			answer := make(chan struct{})
			var ctrls atomic.Int32
			control := func(context.Context) error {
				if n := ctrls.Add(1); int(n) == tt.answerAt {
					close(answer)
				}
				return nil
			}
			done := make(chan []error, 1)
			running := make(chan struct{}, 8)
			probes := tt.probes(answer)
			for i, p := range probes {
				probes[i] = func(ctx context.Context, pc *pace) error {
					running <- struct{}{} // await has set its bound by now
					return p(ctx, pc)
				}
			}
			go func() { done <- d.await(context.Background(), control, probes...) }()
			<-running
			if !tt.early {
				select {
				case errs := <-done:
					t.Fatalf("await returned %v before the clock moved", errs)
				default:
				}
			}
			if tt.advance {
				clk.Advance(time.Second)
			} else {
				clk.Advance(minSilence) // the shortest wait before silence counts
			}
			var errs []error
			select {
			case errs = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("await did not return")
			}
			require.Len(t, errs, len(tt.wantErr))
			for i, w := range tt.wantErr {
				require.Equal(t, w, errs[i] != nil, "probe %d: %v", i, errs[i])
			}
			if tt.wantAtMost {
				require.LessOrEqual(t, ctrls.Load(), tt.wantCtrls)
			} else {
				require.Equal(t, tt.wantCtrls, ctrls.Load())
			}
		})
	}
}
