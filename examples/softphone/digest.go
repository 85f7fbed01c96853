package main

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// challenge is a parsed WWW-Authenticate or Proxy-Authenticate digest
// challenge (RFC 8760 section 2.1, RFC 2617 section 3.2.1).
type challenge struct {
	realm, nonce, opaque, algorithm, qop string
}

var errNoDigest = errors.New("not a digest challenge")

// parseChallenge reads `Digest realm="x", nonce="y", qop="auth", ...`.
func parseChallenge(v string) (challenge, error) {
	var c challenge
	v = strings.TrimSpace(v)
	if len(v) < 7 || !strings.EqualFold(v[:6], "Digest") {
		return c, errNoDigest
	}
	for _, kv := range splitParams(v[6:]) {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		val = strings.Trim(strings.TrimSpace(val), `"`)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "realm":
			c.realm = val
		case "nonce":
			c.nonce = val
		case "opaque":
			c.opaque = val
		case "algorithm":
			c.algorithm = val
		case "qop":
			c.qop = val
		}
	}
	if c.nonce == "" {
		return c, fmt.Errorf("digest challenge without nonce: %q", v)
	}
	if c.algorithm != "" && !strings.EqualFold(c.algorithm, "MD5") {
		return c, fmt.Errorf("digest algorithm %s not supported (MD5 only)", c.algorithm)
	}
	return c, nil
}

// splitParams splits on commas outside quotes.
func splitParams(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// authorization builds the Authorization header value answering c for a
// request of method to uri (RFC 2617 section 3.2.2; qop=auth when offered).
func (c challenge) authorization(user, password, method, uri string, nc int) string {
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	return c.authorizationWith(user, password, method, uri, nc, hex.EncodeToString(raw[:]))
}

func (c challenge) authorizationWith(user, password, method, uri string, nc int, cnonce string) string {
	ha1 := md5hex(user + ":" + c.realm + ":" + password)
	ha2 := md5hex(method + ":" + uri)
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username="%s", realm="%s", nonce="%s", uri="%s"`, user, c.realm, c.nonce, uri)
	if qopAuth(c.qop) {
		ncs := fmt.Sprintf("%08x", nc)
		resp := md5hex(ha1 + ":" + c.nonce + ":" + ncs + ":" + cnonce + ":auth:" + ha2)
		fmt.Fprintf(&b, `, response="%s", qop=auth, nc=%s, cnonce="%s"`, resp, ncs, cnonce)
	} else {
		fmt.Fprintf(&b, `, response="%s"`, md5hex(ha1+":"+c.nonce+":"+ha2))
	}
	b.WriteString(`, algorithm=MD5`)
	if c.opaque != "" {
		fmt.Fprintf(&b, `, opaque="%s"`, c.opaque)
	}
	return b.String()
}

func qopAuth(qop string) bool {
	for _, q := range strings.Split(qop, ",") {
		if strings.TrimSpace(q) == "auth" {
			return true
		}
	}
	return false
}
