package netlab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// inNamespace runs f on an OS thread that has joined the network namespace
// at nsPath, then moves the thread back to its own namespace. If it cannot
// be moved back, the thread stays locked and is thrown away with the
// goroutine, so no other goroutine ever runs inside the namespace by
// accident. Sockets created by f stay in the namespace for their whole life
// and may be used from any goroutine.
func inNamespace(nsPath string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netlab: open own namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netlab: open %s: %w", nsPath, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netlab: setns %s: %w", nsPath, err)
			return
		}
		err = f()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else: the thread dies with this goroutine
		errc <- err
	}()
	return <-errc
}

// Do runs f on an OS thread inside node's network namespace: every socket f
// creates (net.Listen*, net.Dial*, a custom net.Dialer) belongs to that node.
func (l *Lab) Do(node Node, f func() error) error {
	return inNamespace(l.nsPath(node), f)
}

// ListenUDP opens a UDP socket on addr inside node; the test fails if it
// cannot. The socket is closed at cleanup if the test has not closed it.
func (l *Lab) ListenUDP(node Node, addr netip.AddrPort) *net.UDPConn {
	l.t.Helper()
	var c *net.UDPConn
	network := "udp4"
	if addr.Addr().Is6() {
		network = "udp6"
	}
	err := l.Do(node, func() (err error) {
		c, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		l.t.Fatalf("netlab: listen udp %s in %s: %v", addr, node, err)
	}
	l.t.Cleanup(func() { c.Close() })
	return c
}

// ListenTCP opens a TCP listener on addr inside node.
func (l *Lab) ListenTCP(node Node, addr netip.AddrPort) *net.TCPListener {
	l.t.Helper()
	var ln *net.TCPListener
	err := l.Do(node, func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		l.t.Fatalf("netlab: listen tcp %s in %s: %v", addr, node, err)
	}
	l.t.Cleanup(func() { ln.Close() })
	return ln
}

// DialTCP connects from inside node to raddr (the local address is chosen by
// the kernel).
func (l *Lab) DialTCP(node Node, raddr netip.AddrPort) *net.TCPConn {
	l.t.Helper()
	var c *net.TCPConn
	err := l.Do(node, func() (err error) {
		c, err = net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(raddr))
		return err
	})
	if err != nil {
		l.t.Fatalf("netlab: dial tcp %s from %s: %v", raddr, node, err)
	}
	l.t.Cleanup(func() { c.Close() })
	return c
}

// DialContext returns a dial function (the shape of net.Dialer.DialContext
// and http.Transport.DialContext) whose sockets are created inside node.
func (l *Lab) DialContext(node Node) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		// The socket is created and connected on the namespaced thread; a
		// TCP connect then completes through the poller, outside it.
		err = l.Do(node, func() (err error) {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// ListenPacket returns a function with the shape of
// net.ListenConfig.ListenPacket whose sockets are created inside node.
func (l *Lab) ListenPacket(node Node) func(ctx context.Context, network, addr string) (net.PacketConn, error) {
	return func(ctx context.Context, network, addr string) (c net.PacketConn, err error) {
		err = l.Do(node, func() (err error) {
			var lc net.ListenConfig
			c, err = lc.ListenPacket(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// ReadLoop reads c in a goroutine until the test ends, handing every
// packet (and its unmapped source) to h; at cleanup it closes c and waits
// for the goroutine.
func ReadLoop(t testing.TB, c *net.UDPConn, h func(b []byte, from netip.AddrPort)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			h(buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
}
