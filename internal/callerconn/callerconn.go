package callerconn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// udpConn is what *net.UDPConn offers beyond net.PacketConn: reads and
// writes without allocating a net.Addr.
type udpConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// ReadFrom reads one packet from conn into buf and returns its size and
// source, IPv4-mapped IPv6 addresses unmapped. It does not allocate when
// conn is a *net.UDPConn.
func ReadFrom(conn net.PacketConn, buf []byte) (int, netip.AddrPort, error) {
	if u, ok := conn.(udpConn); ok {
		n, from, err := u.ReadFromUDPAddrPort(buf)
		return n, Unmap(from), err
	}
	n, addr, err := conn.ReadFrom(buf)
	if err != nil {
		return n, netip.AddrPort{}, err
	}
	return n, AddrPortOf(addr), nil
}

// WriteTo sends b to dst on conn. It does not allocate when conn is a
// *net.UDPConn.
func WriteTo(conn net.PacketConn, b []byte, dst netip.AddrPort) error {
	if u, ok := conn.(udpConn); ok {
		_, err := u.WriteToUDPAddrPort(b, dst)
		return err
	}
	_, err := conn.WriteTo(b, net.UDPAddrFromAddrPort(dst))
	return err
}

// AddrPortOf converts the net.Addr of a socket (a *net.UDPAddr, a
// *net.TCPAddr, or anything whose String is an address and port) to an
// unmapped netip.AddrPort; zero when it is none of these.
func AddrPortOf(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.UDPAddr:
		return Unmap(v.AddrPort())
	case *net.TCPAddr:
		return Unmap(v.AddrPort())
	case nil:
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return Unmap(ap)
}

// Unmap returns ap with an IPv4-mapped IPv6 address turned into IPv4, so
// that a dual-stack socket's sources compare equal to IPv4 addresses.
func Unmap(ap netip.AddrPort) netip.AddrPort {
	if !ap.Addr().Is4In6() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Loop reads a caller's socket in one goroutine and hands every packet to
// a function, until Stop or a read error. Make one with Start.
type Loop struct {
	conn   net.PacketConn
	handle func(b []byte, from netip.AddrPort)
	end    func(err error)

	mu      sync.Mutex
	stopped bool // Stop was called: the next read error ends the loop quietly
	done    chan struct{}
}

// Start starts reading conn with a buffer of size bytes. handle gets every
// packet; b is only valid during the call. end, when not nil, gets the read
// error that ended the loop (never a timeout, never after Stop), once.
func Start(conn net.PacketConn, size int, handle func(b []byte, from netip.AddrPort), end func(err error)) *Loop {
	l := &Loop{conn: conn, handle: handle, end: end, done: make(chan struct{})}
	go l.run(make([]byte, size))
	return l
}

// Serve reads conn like Start until ctx ends or a read error ends the loop,
// for a blocking Serve(ctx) method: it returns nil when ctx ends (also when
// the caller closed conn because it did), else the read error. It stops the
// loop before it returns, so conn is left unread and without a deadline.
func Serve(ctx context.Context, conn net.PacketConn, size int, handle func(b []byte, from netip.AddrPort)) error {
	failed := make(chan error, 1)
	l := Start(conn, size, handle, func(err error) { failed <- err })
	defer l.Stop()
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
}

// Claim returns a handle function for Start that offers every packet to a
// client's claim (its HandlePacket: true when the packet was its own) and
// passes what it does not claim to rest, the caller's Unhandled; a nil rest
// drops them.
func Claim(claim func(b []byte, from netip.AddrPort) bool, rest func(b []byte, from netip.AddrPort)) func(b []byte, from netip.AddrPort) {
	return func(b []byte, from netip.AddrPort) {
		if !claim(b, from) && rest != nil {
			rest(b, from)
		}
	}
}

func (l *Loop) run(buf []byte) {
	defer close(l.done)
	for {
		n, from, err := ReadFrom(l.conn, buf)
		if err != nil {
			if l.readOn(err) {
				continue
			}
			return
		}
		l.handle(buf[:n], from)
	}
}

// readOn decides after a read error: a timeout from a deadline someone
// else set is cleared and the loop reads on; after Stop, or on any other
// error, the loop ends. The lock orders the clearing against Stop setting
// its deadline, so Stop's is never lost.
func (l *Loop) readOn(err error) bool {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		_ = l.conn.SetReadDeadline(time.Time{})
		l.mu.Unlock()
		return true
	}
	l.stopped = true
	l.mu.Unlock()
	if l.end != nil {
		l.end(err)
	}
	return false
}

// Done is closed when the loop has ended (after Stop, or after a read
// error and its end call).
func (l *Loop) Done() <-chan struct{} { return l.done }

// Stop ends the loop: it sets a read deadline in the past to wake the
// reader, waits for it (and for the handle or end call under way), then
// clears the deadline. The socket stays open and the caller's. Stop is
// idempotent; it must not be called from handle or end.
func (l *Loop) Stop() {
	l.mu.Lock()
	first := !l.stopped
	l.stopped = true
	if first {
		_ = l.conn.SetReadDeadline(time.Unix(1, 0))
	}
	l.mu.Unlock()
	<-l.done
	if first {
		_ = l.conn.SetReadDeadline(time.Time{})
	}
}
