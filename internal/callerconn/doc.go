// Package callerconn holds what sipnat's clients do on a net.PacketConn
// that belongs to the caller (the SIP or media socket of a UA, the control
// socket of an edge): read and write it with netip addresses, without
// allocating on a *net.UDPConn, and, when the caller does not read the
// socket itself, read it in one goroutine that stops without closing it.
//
// # Usage
//
// A client that reads the caller's socket starts a Loop and stops it in its
// own Close:
//
//	l := callerconn.Start(conn, 65535, c.handle, c.readFailed)
//	...
//	l.Stop() // wakes the reader with a past read deadline, waits, clears it
//
// The loop owns reading while it runs: a read deadline set by someone else
// wakes it, and it clears that deadline and reads on. A read error that is
// not a timeout (the caller closed the socket) ends the loop and is handed
// to the end function once. Stop never closes the socket.
//
// A blocking Serve(ctx) method (outbound.Edge.ServePacket, agent.ServeSIP and
// ServeMedia) is Serve: the same loop until ctx ends, stopped before it
// returns. Claim builds a handle function that offers each packet to a
// client's HandlePacket first and passes the rest on.
//
// # Concurrency
//
// Stop may be called from any goroutine but the loop's own (from inside the
// handle or end functions it would wait for itself), any number of times.
package callerconn
