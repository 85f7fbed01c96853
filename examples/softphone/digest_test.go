package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The example of RFC 2617 section 3.5.
func TestDigestRFC2617(t *testing.T) {
	t.Parallel()
	c, err := parseChallenge(`Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`)
	require.NoError(t, err)
	got := c.authorizationWith("Mufasa", "Circle Of Life", "GET", "/dir/index.html", 1, "0a4f113b")
	require.Contains(t, got, `response="6629fae49393a05397450978507c4ef1"`)
	require.Contains(t, got, `qop=auth, nc=00000001, cnonce="0a4f113b"`)
	require.Contains(t, got, `opaque="5ccc069c403ebaf9f0171e9517f40e41"`)
}

func TestParseChallengeErrors(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "Basic realm=x", `Digest realm="x"`, `Digest nonce="n", algorithm=SHA-512-256`} {
		_, err := parseChallenge(v)
		require.Error(t, err, v)
	}
	c, err := parseChallenge(`Digest realm="a,b", nonce="n"`)
	require.NoError(t, err)
	require.Equal(t, "a,b", c.realm)
}
