package sdp

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// readSIP reads a whole SIP message captured in the lab (testdata/sip).
func readSIP(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sip", name))
	require.NoError(t, err)
	return b
}

// sipBody returns the body of a SIP message with CRLF line endings. The
// message around it is sipmsg's business (its AppendRewriteSDP tests
// compare whole messages with the ALG's).
func sipBody(t testing.TB, msg []byte) string {
	t.Helper()
	i := bytes.Index(msg, []byte("\r\n\r\n"))
	require.GreaterOrEqual(t, i, 0)
	return string(msg[i+4:])
}
