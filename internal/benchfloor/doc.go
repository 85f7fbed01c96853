// Package benchfloor is the crude floor that the paired benchmarks of
// sipmsg (internal/sipgobench) and sdp (sdp/sdppion) report beside the
// library and its alternative: a function that already knows which
// strings to replace and only finds them with bytes.Index and copies the
// rest. No parser can beat it, since it neither checks nor decides
// anything; the ratio to it says how much of the library's time is the
// copying and finding any rewrite has to do. Not for use outside the
// benchmarks.
package benchfloor
