// Package linefeed finds the line feeds of a buffer 64 bytes at a time, for the
// line walks of sipmsg (SIP headers) and sdp (SDP lines). A walk that asks
// bytes.IndexByte for each line's end pays one call, and its latency, per
// line; a 64-bit mask of the next 64 bytes' line feeds gives every line end
// in that block for one call and a few bit operations each, and the line
// starts no longer wait on one another.
//
// On amd64 the mask is four SSE2 compares (part of the amd64 baseline, so
// no CPU feature check); elsewhere it is computed eight bytes at a time in
// Go (also with the purego build tag). Iter walks the line feeds of a buffer in order;
// Blocks hands a walk the masks of up to eight blocks at once, for a loop that
// keeps the current block's mask in a register (sdp's walk does).
package linefeed
