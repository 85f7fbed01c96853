package sipmsg

import (
	"bytes"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// Signer signs what names a request's transaction across a stateless
// proxy, so that the proxy can tell a response to a request it forwarded
// from a forged or stale one without keeping state: HMAC-SHA256 under the
// proxy's key over a Via branch, the Call-ID, the From tag and the CSeq
// number, all of which the response carries back. A Signer is safe for
// concurrent use and does not allocate in steady state.
type Signer struct {
	macs sync.Pool // *signerState
}

// signerState is a pooled HMAC with the buffer its sum goes to.
type signerState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// fieldEnd follows every signed field, so that fields cannot run into each
// other.
var fieldEnd = []byte{0}

// NewSigner returns a Signer under key. A nil key means 32 random bytes:
// the signatures then do not outlive the process (a response to a request
// signed before a restart is taken for a forged one). Proxies that answer
// at one address share a key.
func NewSigner(key []byte) *Signer {
	if key == nil {
		key = make([]byte, 32)
		_, _ = crand.Read(key) // never fails on supported platforms
	}
	key = bytes.Clone(key)
	s := &Signer{}
	s.macs.New = func() any { return &signerState{h: hmac.New(sha256.New, key)} }
	return s
}

// Sum puts into out (at most 32 bytes) the first len(out) bytes of the
// HMAC over branch, m's Call-ID, From tag and CSeq number (each followed by
// a zero byte), then extra.
func (s *Signer) Sum(out, branch []byte, m *Message, extra []byte) {
	st := s.macs.Get().(*signerState)
	h := st.h
	h.Reset()
	callID, _ := m.Get(HdrCallID)
	fromTag, _ := m.Tag(HdrFrom)
	for _, f := range [...][]byte{branch, callID, fromTag, m.cseqNumber()} {
		h.Write(f)
		h.Write(fieldEnd)
	}
	h.Write(extra)
	copy(out, h.Sum(st.sum[:0]))
	s.macs.Put(st)
}

// cseqNumber returns the digits of m's CSeq.
func (m *Message) cseqNumber() []byte {
	v, _ := m.Get(HdrCSeq)
	n := 0
	for n < len(v) && isDigit(v[n]) {
		n++
	}
	return v[:n]
}

// sigBytes is how many bytes of the HMAC a signature carries: 64 bits, so
// a forger without the key needs about 2^63 tries per message.
const sigBytes = 8

// SigLen is the length of a signature as AppendSig writes it: 16 hex digits.
const SigLen = 2 * sigBytes

// AppendSig appends to dst the signature of branch, m's Call-ID, From tag
// and CSeq number, and extra: the first 64 bits of Sum in lower-case hex
// (SigLen digits).
func (s *Signer) AppendSig(dst, branch []byte, m *Message, extra []byte) []byte {
	var sum [sigBytes]byte
	s.Sum(sum[:], branch, m, extra)
	return hex.AppendEncode(dst, sum[:])
}

// VerifySig reports whether sig is AppendSig's signature of the same
// fields, as written (lower-case hex: another spelling of the same bits is
// not taken), compared in constant time.
func (s *Signer) VerifySig(sig, branch []byte, m *Message, extra []byte) bool {
	if len(sig) != SigLen {
		return false
	}
	var want [SigLen]byte
	s.AppendSig(want[:0], branch, m, extra)
	return hmac.Equal(want[:], sig)
}

// AppendBranch appends to dst the branch a stateless proxy puts in its own
// Via when it forwards request m (RFC 3261 §16.11): prefix (which should
// start with the magic cookie "z9hG4bK") and 16 hex digits of Sum over m's
// top Via branch. It is the same for the request's retransmissions, its
// CANCEL and the ACK of a failure answer (same top branch and CSeq number),
// as §16.11 asks, and differs between requests; OwnBranch checks it on the
// response.
func (s *Signer) AppendBranch(dst []byte, prefix string, m *Message) []byte {
	var branch []byte
	if v, err := m.ParseTopVia(); err == nil && v.HasBranch {
		branch = v.Branch.Value.In(m.buf)
	}
	return s.AppendSig(append(dst, prefix...), branch, m, nil)
}

// OwnBranch reports whether response m answers a request the proxy
// forwarded: its top Via's branch is the one AppendBranch(prefix) made from
// the request, recomputed from the Via below it (the previous hop's, which
// was the request's top Via), the Call-ID, the From tag and the CSeq number.
// A response whose top Via branch the proxy did not make (forged, or from
// before a restart under another key) is not.
func (s *Signer) OwnBranch(prefix string, m *Message) bool {
	if m.request {
		return false
	}
	it := m.Values(HdrVia)
	if !it.Next() {
		return false
	}
	top, err := ParseVia(m.buf, it.Span())
	if err != nil || !top.HasBranch {
		return false
	}
	got := top.Branch.Value.In(m.buf)
	if len(got) != len(prefix)+SigLen || string(got[:len(prefix)]) != prefix {
		return false
	}
	var prev []byte
	if it.Next() {
		v, err := ParseVia(m.buf, it.Span())
		if err != nil {
			return false
		}
		if v.HasBranch {
			prev = v.Branch.Value.In(m.buf)
		}
	}
	return s.VerifySig(got[len(prefix):], prev, m, nil)
}
