package binding_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/binding"
)

func TestKeepAliveInterval(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ lifetime, want time.Duration }{
		{0, binding.DefaultKeepAlive},
		{-time.Second, binding.DefaultKeepAlive},
		{time.Second, binding.MinKeepAlive},
		{5 * time.Second, 2500 * time.Millisecond},
		{2 * time.Minute, time.Minute},
	} {
		require.Equal(t, tc.want, binding.KeepAliveInterval(tc.lifetime), "lifetime %v", tc.lifetime)
	}
}
