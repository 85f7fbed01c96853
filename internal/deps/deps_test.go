package deps

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// listDeps returns the non-standard packages pkg links (itself included),
// by go list run at the module root.
func listDeps(t *testing.T, pkg string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.Fields(string(out))
}

func TestLayers(t *testing.T) {
	t.Parallel()
	const mod = "github.com/sipnat/sipnat/"
	tests := []struct {
		pkg    string
		forbid []string // import path prefixes it must not link
		only   []string // when set, every non-standard package must start with one of these
	}{
		{pkg: "./ipaddr", only: []string{mod + "ipaddr"}},
		{pkg: "./clock", only: []string{mod + "clock"}},
		{pkg: "./binding", only: []string{mod + "binding"}},
		{pkg: "./sipmsg", forbid: []string{"github.com/pion/", "github.com/huin/", mod + "nat"}},
		{pkg: "./sdp", forbid: []string{"github.com/pion/", mod + "nat"}},
		{pkg: "./keepalive", forbid: []string{"github.com/pion/", "github.com/huin/", mod + "nat"}},
		{pkg: "./nat", forbid: []string{"github.com/pion/sdp", "github.com/pion/turn", "github.com/huin/"}},
		{pkg: "./discovery", forbid: []string{"github.com/pion/sdp", "github.com/pion/turn"}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			t.Parallel()
			for _, d := range listDeps(t, tt.pkg) {
				for _, f := range tt.forbid {
					require.False(t, strings.HasPrefix(d, f), "%s links %s", tt.pkg, d)
				}
				if tt.only != nil {
					ok := false
					for _, o := range tt.only {
						ok = ok || strings.HasPrefix(d, o)
					}
					require.True(t, ok, "%s links %s; a leaf imports only the standard library", tt.pkg, d)
				}
			}
		})
	}
}
