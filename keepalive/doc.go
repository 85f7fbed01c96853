// Package keepalive keeps NAT bindings open, notices when they break, and
// scales the server side to a whole registrar's worth of contacts.
//
// A NAT forgets an idle UDP binding after tens of seconds (a TCP one after
// minutes or hours); after that, requests for the user agent are dropped
// at the NAT. The package has two halves:
//
//   - Keeper, for a user agent: one per flow, sending keep-alives of one
//     Kind at the flow's interval and reporting MappingChanged, FlowFailed
//     and Recovered.
//   - Scheduler, for a proxy or registrar (Kamailio nathelper's natping):
//     pings every NATed contact it holds, UDP pings or SIP OPTIONS, and
//     reports the contacts that stopped answering.
//
// # Standards
//
//   - RFC 5626 (SIP Outbound) §3.5 and §4.4: CRLF ping/pong on TCP and TLS
//     (send CRLF CRLF, expect CRLF within 10 s), STUN keep-alives on the
//     SIP socket to the SIP server's own address and port, keep-alive
//     intervals drawn uniformly from 80–100 % of the base, the Flow-Timer,
//     and the flow-recovery backoff of §4.5 (Recovery, Backoff).
//   - RFC 6223 (keep): a registrar or proxy that answers a Via "keep"
//     parameter with a value asks for keep-alives at least that often; pass
//     it as Timing.Negotiated (or with SetTiming when it arrives).
//   - RFC 6263: keep-alives for RTP on a media socket on hold, an RTP
//     packet with no payload and a payload type the session does not use,
//     continuing the stream's SSRC, sequence numbers and timestamps.
//   - RFC 3261 §17.1.2.2: OPTIONS keep-alives on UDP are retransmitted
//     after T1, 2·T1, ... (at most T2, and never wider than the interval).
//   - RFC 5389/8489 Binding requests for the STUN kind come from package nat.
//
// The interval is fixed, or derived from the binding lifetime package nat
// measured (half of it by default, or the lifetime minus a margin), capped
// by a negotiated interval, and jittered by RFC 5626's 80–100 %. With
// KeeperConfig.WithinInterval the wait for an answer is derived from the
// keep-alives' own round trips (RFC 6298) and taken out of the interval, so
// a flow that dies at any moment is reported failed within one interval.
//
// # Usage
//
// A user agent registers over its SIP socket, then keeps the flow alive
// with STUN (which also reveals a changed public address) and re-registers
// when the Keeper says so:
//
//	stunc := nat.NewClient(conn, nat.ClientConfig{CallerReads: true})
//	k, err := keepalive.NewKeeper(keepalive.KeeperConfig{
//		Kind:   keepalive.STUN,
//		Binder: stunc, Server: registrar, // the SIP server's own address and port
//		// res from nat.DiscoverWith with LifetimeMax set; keep from
//		// KeepFromResponse on the REGISTER's 200 (RFC 6223)
//		Timing: keepalive.Timing{Lifetime: res.Lifetime, Negotiated: keep},
//		OnEvent: func(e keepalive.Event) {
//			switch e.Kind {
//			case keepalive.MappingChanged, keepalive.FlowFailed:
//				reRegister()
//			}
//		},
//	})
//	k.Start()
//	defer k.Stop()
//	// the read loop: STUN to stunc.HandlePacket, SIP to the stack,
//	// and k.Answer() for a pong or a response to an OPTIONS keep-alive.
//
// STUN keep-alives must go to the SIP server's own address and port (a
// registrar that answers STUN on its SIP port, RFC 5626 §4.4.2): behind a
// port-restricted (address-and-port-dependent filtering) NAT, STUN sent to
// another port keeps that port's binding and lets the SIP one expire; the
// testbed shows both.
//
// The other kinds take a Send function instead: conn.Write on a TCP/TLS
// connection (CRLF; ReadStream reads the stream for callers without a read
// loop), a closure around WriteToUDPAddrPort (UDP, Options with
// OptionsBuilder, RTP on the media socket).
//
// A registrar feeds its Scheduler from REGISTER and its read loop:
//
//	s, err := keepalive.NewScheduler(keepalive.SchedulerConfig{
//		Send:    keepalive.SenderFunc(func(p keepalive.Ping) error { ... }),
//		OnEvent: func(e keepalive.ContactEvent) { ... }, // Unreachable: drop the contact
//	})
//	s.Set(keepalive.Contact{Addr: received, Interval: 25 * time.Second, Kind: keepalive.PingOptions})
//	s.Answered(from) // for every response that arrives
//	s.Remove(received) // when the registration ends
//
// The Scheduler holds contacts in a slab of 52-byte records found through a
// hashed index, and runs a hashed timing wheel from a single clock timer:
// Set, Remove, Answered and each ping are O(1), and a million contacts take
// about 56 bytes each (see BenchmarkContacts). MaxContacts bounds them
// (the contact set longest ago is evicted) and MaxRate caps the pings per
// second, so a REGISTER flood or contact churn costs bounded memory and
// traffic; a registrar also checks a received address with
// sipmsg.DestPolicy before it schedules pings to it.
//
// # Time
//
// Everything runs on the clock.Clock given in the config (the system clock
// when nil), with clock timers only: no goroutine per keep-alive or per
// contact. Tests drive it with a fake clock.
//
// # Concurrency
//
// Keeper and Scheduler are safe for concurrent use. Their callbacks
// (KeeperConfig.OnEvent, SchedulerConfig.OnEvent) are called without locks held,
// from a clock timer's goroutine or from the goroutine that called Answer
// or Answered, and may call back into the Keeper or Scheduler. KeeperConfig.Send
// runs with the Keeper's lock held and must not call the Keeper;
// Sender.SendPing is never called concurrently with itself. The library
// owns no socket: the caller's sockets send, and the caller's read loop
// hands answers in (or ReadStream reads a stream the caller gives it).
package keepalive
