// Package sdp finds private addresses in SDP bodies (RFC 8866) and rewrites
// c=, o=, m= ports and a=rtcp (RFC 3605) to the address that works,
// byte-exactly outside what it changes.
package sdp
