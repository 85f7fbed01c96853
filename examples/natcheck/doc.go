// Command natcheck tells what NAT the machine is behind and what that means
// for SIP, reporting only what it tested (run it with -h for the list).
//
//	go run ./examples/natcheck                                  # self-test, offline
//	go run ./examples/natcheck -server stun.example.net:3478 -lifetime 2m
//	go run ./examples/natcheck -server a.example:3478 -server b.example:3478 -json
//	go run ./examples/natcheck -server '[2001:db8::2]:3478' -server 192.0.2.2:3478
//
// It exits 0 when it could test, 1 when no server answered (the report is
// still printed), 2 for a bad command line.
//
// # JSON schema
//
// -json prints one object; a field absent means "not tested" (see
// not_tested for why), never "no". Durations are milliseconds.
//
//	tool          "natcheck"
//	version       "sipnat v…" or "sipnat (devel)"
//	time          RFC 3339 UTC start time
//	self_test     true when run against its own loopback server
//	local         the tested socket's address
//	duration_ms   how long the run took
//	servers[]     per -server: server (as given), addr, public (what it saw),
//	              rtt_ms, error (why it gave nothing, naming no secret)
//	udp           "works" or "blocked: …"
//	nat           method (rfc5780, rfc3489, two-server, basic), server, public,
//	              mapping and filtering (none, endpoint-independent,
//	              address-dependent, address-and-port-dependent, unknown),
//	              classic (RFC 3489 type), hairpin, port_preserved,
//	              lifetime_ms, lifetime_gone_ms, lifetime_note
//	gateway       gateway, pcp, natpmp, upnp (which answered), external,
//	              test_mapping, test_mapping_via, test_mapping_deleted, errors[]
//	cgnat         {yes, reason}: from the gateway's external address against STUN
//	double_nat    {yes, reason}: the same comparison
//	ipv6          host_addrs[], server, public, translated, translation ("no
//	              translation", NPTv6, NAT66), method, mapping and filtering
//	              (the RFC 4787 answers over IPv6: mapping none with
//	              address-and-port-dependent filtering is a stateful
//	              firewall), lifetime_ms and lifetime_gone_ms (how long the
//	              firewall keeps an idle flow's state, with -lifetime), note
//	nat64         on an IPv6-only test: prefixes[], from (dns64: RFC 7050,
//	              pcp: RFC 7225 PREFIX64), or note (why none was found);
//	              from discovery.DetectNAT64
//	sip           decision (direct, port mapping, relay), contact_from, contact,
//	              keepalive_ms, keepalive_note, relay, incoming_calls and
//	              two_way_audio ({works, assumed, reason}); from agent.Decide
//	errors[]      every error, naming the server or step
//	not_tested[]  what was skipped and why
package main
