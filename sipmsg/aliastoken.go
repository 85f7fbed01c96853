package sipmsg

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// aliasTokenParam is the URI parameter that signs an ;alias= value: the
// first 12 bytes of HMAC-SHA256(key, value), base64url without padding.
const aliasTokenParam = "aliastok"

// maxAliasValue bounds the alias values signed or checked ("[IPv6]~port~t"
// is at most 49 bytes).
const maxAliasValue = 64

// aliasMAC is HMAC-SHA256(key, msg) (RFC 2104) on stack buffers, so that a
// signed alias costs AppendFix no allocation; msg is at most maxAliasValue.
func aliasMAC(key, msg []byte) [32]byte {
	var k [64]byte
	if len(key) > len(k) {
		s := sha256.Sum256(key)
		copy(k[:], s[:])
	} else {
		copy(k[:], key)
	}
	var in [64 + maxAliasValue]byte
	for i := range k {
		in[i] = k[i] ^ 0x36
	}
	n := copy(in[64:], msg)
	inner := sha256.Sum256(in[:64+n])
	var out [64 + 32]byte
	for i := range k {
		out[i] = k[i] ^ 0x5c
	}
	copy(out[64:], inner[:])
	return sha256.Sum256(out[:])
}

// appendAliasToken appends the token of alias value v under key.
func appendAliasToken(dst, key, v []byte) []byte {
	mac := aliasMAC(key, v)
	return base64.RawURLEncoding.AppendEncode(dst, mac[:12])
}

// validAliasToken reports whether tok is the token of alias value v.
func validAliasToken(key, v, tok []byte) bool {
	if len(v) > maxAliasValue || len(tok) != 16 {
		return false
	}
	var want [16]byte
	appendAliasToken(want[:0], key, v)
	return subtle.ConstantTimeCompare(want[:], tok) == 1
}
