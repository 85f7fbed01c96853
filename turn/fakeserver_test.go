package turn_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pion/stun/v2"
)

// fakeServer is an in-process TURN server on loopback for fast tests and
// corner cases: it answers Allocate, Refresh, CreatePermission and
// ChannelBind with long-term credentials, relays nothing, and can be told
// to misbehave. The lab's coturn is the real thing.
type fakeServer struct {
	t     testing.TB
	conn  *net.UDPConn
	addr  netip.AddrPort
	relay netip.AddrPort
	done  chan struct{}

	mu        sync.Mutex
	nonce     string
	staleOnce map[stun.Method]bool // answer the next request of the method with 438
	mismatch  map[stun.Method]bool // answer requests of the method with 437
	silent    atomic.Bool          // answer nothing
	channels  map[uint16]netip.AddrPort
	requests  map[stun.Method]int
	mapped    netip.AddrPort // when set, the mapped address every answer reports
	stalled   atomic.Bool    // the streams are no longer read (listenStream)
	streamIn  atomic.Int64   // ChannelData frames read from streams
}

const fakeRealm, fakeUser, fakePass = "fake.example", "alice", "secret"

func newFakeServer(t testing.TB) *fakeServer {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		relay: netip.MustParseAddrPort("127.0.0.1:50000"), done: make(chan struct{}), nonce: "n1",
		staleOnce: map[stun.Method]bool{}, mismatch: map[stun.Method]bool{},
		channels: map[uint16]netip.AddrPort{}, requests: map[stun.Method]int{}}
	go s.serve()
	t.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

func (s *fakeServer) count(m stun.Method) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[m]
}

func (s *fakeServer) serve() {
	defer close(s.done)
	buf := make([]byte, 2048)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if buf[0]&0xC0 != 0 || s.silent.Load() {
			continue // ChannelData, RTP: the fake relays nothing
		}
		m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if m.Decode() != nil || m.Type.Class != stun.ClassRequest {
			continue
		}
		if res := s.answer(m, from); res != nil {
			_, _ = s.conn.WriteToUDPAddrPort(res.Raw, from)
		}
	}
}

func (s *fakeServer) answer(m *stun.Message, from netip.AddrPort) *stun.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[m.Type.Method]++
	if s.mapped.IsValid() {
		from = s.mapped
	}
	mapped := &stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())}
	if m.Type.Method == stun.MethodBinding {
		return build(m, stun.ClassSuccessResponse, mapped)
	}
	var user stun.Username
	var nonce stun.Nonce
	if user.GetFrom(m) != nil || nonce.GetFrom(m) != nil {
		return build(m, stun.ClassErrorResponse, stun.CodeUnauthorized, stun.NewRealm(fakeRealm), stun.NewNonce(s.nonce))
	}
	integrity := stun.NewLongTermIntegrity(string(user), fakeRealm, fakePass)
	if integrity.Check(m) != nil {
		return build(m, stun.ClassErrorResponse, stun.CodeUnauthorized, stun.NewRealm(fakeRealm), stun.NewNonce(s.nonce))
	}
	if string(nonce) != s.nonce || s.staleOnce[m.Type.Method] {
		s.staleOnce[m.Type.Method] = false
		s.nonce += "x"
		return build(m, stun.ClassErrorResponse, stun.CodeStaleNonce, stun.NewRealm(fakeRealm), stun.NewNonce(s.nonce))
	}
	if s.mismatch[m.Type.Method] {
		return build(m, stun.ClassErrorResponse, stun.CodeAllocMismatch)
	}
	attrs := []stun.Setter{}
	switch m.Type.Method {
	case stun.MethodAllocate:
		relayed := stun.XORMappedAddress{IP: s.relay.Addr().AsSlice(), Port: int(s.relay.Port())}
		attrs = append(attrs, setterFunc(func(r *stun.Message) error { return relayed.AddToAs(r, stun.AttrXORRelayedAddress) }),
			mapped, rawLifetime(600))
	case stun.MethodRefresh:
		attrs = append(attrs, rawLifetime(600))
	case stun.MethodChannelBind:
		v, _ := m.Get(stun.AttrChannelNumber)
		var peer stun.XORMappedAddress
		_ = peer.GetFromAs(m, stun.AttrXORPeerAddress)
		ip, _ := netip.AddrFromSlice(peer.IP)
		s.channels[binary.BigEndian.Uint16(v)] = netip.AddrPortFrom(ip.Unmap(), uint16(peer.Port))
	}
	attrs = append(attrs, integrity)
	return build(m, stun.ClassSuccessResponse, attrs...)
}

// channelOf returns the channel bound to peer, 0 when none.
func (s *fakeServer) channelOf(peer netip.AddrPort) uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch, p := range s.channels {
		if p == peer {
			return ch
		}
	}
	return 0
}

// listenStream serves the fake over TCP on loopback as well (TURN over
// TCP, RFC 8656 section 3.1): STUN requests are answered on the stream,
// ChannelData counted and dropped. Once stalled is set its streams are no
// longer read, as when a NAT on the way forgot them.
func (s *fakeServer) listenStream(t testing.TB) netip.AddrPort {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	quit := make(chan struct{})
	t.Cleanup(func() {
		close(quit)
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); s.serveStream(c, quit) }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func (s *fakeServer) serveStream(c *net.TCPConn, quit <-chan struct{}) {
	from := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	r := bufio.NewReader(c)
	buf := make([]byte, 0xFFFF+20)
	for !s.stalled.Load() {
		if _, err := io.ReadFull(r, buf[:4]); err != nil {
			return
		}
		n := 20 + int(binary.BigEndian.Uint16(buf[2:]))
		if buf[0]&0xC0 == 0x40 {
			n = 4 + (int(binary.BigEndian.Uint16(buf[2:]))+3)&^3
		}
		if _, err := io.ReadFull(r, buf[4:n]); err != nil {
			return
		}
		if buf[0]&0xC0 != 0 {
			s.streamIn.Add(1)
			continue
		}
		m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if m.Decode() != nil || m.Type.Class != stun.ClassRequest {
			continue
		}
		if res := s.answer(m, from); res != nil {
			if _, err := c.Write(res.Raw); err != nil {
				return
			}
		}
	}
	<-quit // hold the stream open, unread, until the test ends
}

type setterFunc func(*stun.Message) error

func (f setterFunc) AddTo(m *stun.Message) error { return f(m) }

type rawLifetime uint32

func (l rawLifetime) AddTo(m *stun.Message) error {
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], uint32(l))
	m.Add(stun.AttrLifetime, v[:])
	return nil
}

func build(req *stun.Message, class stun.MessageClass, attrs ...stun.Setter) *stun.Message {
	setters := append([]stun.Setter{stun.NewTransactionIDSetter(req.TransactionID), stun.NewType(req.Type.Method, class)}, attrs...)
	setters = append(setters, stun.Fingerprint)
	return stun.MustBuild(setters...)
}
