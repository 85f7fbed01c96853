// Package sipmsg scans SIP messages (RFC 3261) without copying, runs the NAT
// tests a proxy needs, and rewrites Via, Contact, alias and Record-Route
// byte-exactly, for proxies and for user agents (RFC 3581, RFC 5626).
package sipmsg
