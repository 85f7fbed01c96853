// Package sdppion is the pion/sdp door of package
// [github.com/sipnat/sipnat/sdp]: the same NAT tests and the same rewrite as
// sdp.Check and sdp.AppendRewrite, on a *sdp.SessionDescription of
// github.com/pion/sdp/v3 that the caller already holds. It lives apart so
// that only programs that use pion/sdp link it; package sdp links no SDP
// library.
//
// CheckSession is the door's Check and RewriteSession its AppendRewrite. Both
// walk the description and hand each field to sdp's FieldRewriter,
// PrivateAddr and PrivateRTCPAddr, so the two doors share one address parser
// and one set of rules. The tests prove both doors give the same description
// and the same Result (without line numbers) on every golden file of package
// sdp and, by fuzzing, on every input in pion's own form.
//
// # What pion costs
//
// Going through pion costs a full parse and re-serialisation (18-46
// allocations and 1.2-13 KB per body) and changes bytes the rewrite did not
// mean to change. In the fastest of interleaved batches on a shared 2-vCPU
// AMD EPYC (BenchmarkRewritePaired, which also times a crude bytes.Index
// floor; BenchmarkRewrite shows the allocations), pion takes:
//
//   - 8.2 µs against 0.64 µs (12.9x) for the 2.9 KB audio+video body
//     with a=rtcp and ICE candidates; the floor takes 0.34 µs;
//   - 2.5 µs against 0.24 µs (10.5x) for a baresip offer (352 bytes; floor
//     0.19 µs);
//   - 1.7 µs against 0.19 µs (9.1x) for a sipp offer (135 bytes; floor
//     0.04 µs),
//
// and more per operation once its garbage is collected. A pion/sdp v3.0.20
// round trip:
//
//   - turns bare LF line endings into CRLF and drops blank lines;
//   - drops leading zeros (v=00, o= session id and version, m= port);
//   - collapses runs of spaces and tabs and drops trailing blanks in o=, c=
//     and m=;
//   - fills a short o= in ("IN" becomes "IN IP4 0.0.0.0");
//   - reorders media lines to the RFC order (c= before b= before a=);
//   - keeps only the last of several c= lines in a stream;
//   - writes "a=x:" as "a=x";
//   - turns r= units into seconds ("7d 1h" becomes "604800 3600");
//   - silently turns an o= session id of 2^64 or more into 0;
//   - loses the rest of a line after a stray CR;
//   - refuses bodies it cannot read at all: no line ending after the last
//     line, m=image (T.38 fax) and other media types it does not know,
//     lower-case transport, unknown line types, unknown b= types, session
//     attributes before t=.
//
// TestPionRoundTripChanges shows each of these next to the byte path's
// output.
//
// # Usage
//
//	var sd psdp.SessionDescription
//	if err := sd.Unmarshal(body); err != nil { ... }
//	res, err := sdppion.RewriteSession(&sd, &sdp.Options{Public: publicAddr})
//	if err != nil { ... }                        // sdp.ErrBadOptions
//	out, err := sd.Marshal()
//
// # Concurrency
//
// The package has no state. RewriteSession changes the description it is
// given; CheckSession only reads it. Calls on different descriptions may run
// at once.
package sdppion
