package nat_test

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v2"
)

// fakeConn is an in-process net.PacketConn for a client in CallerReads mode:
// every write goes to a fake server function, which answers through the
// reply callback (at once, or later on the fake clock); answers are handed to
// the client's HandlePacket. It records every packet sent.
type fakeConn struct {
	local   netip.AddrPort
	serve   func(n int, req []byte, reply func(b []byte, from netip.AddrPort))
	deliver func(b []byte, from netip.AddrPort) bool

	mu    sync.Mutex
	sent  [][]byte
	dsts  []netip.AddrPort
	wrote chan struct{} // one value per write
}

func newFakeConn(local string) *fakeConn {
	return &fakeConn{local: netip.MustParseAddrPort(local), wrote: make(chan struct{}, 1024)}
}

func (f *fakeConn) WriteToUDPAddrPort(b []byte, dst netip.AddrPort) (int, error) {
	f.mu.Lock()
	n := len(f.sent)
	f.sent = append(f.sent, append([]byte(nil), b...))
	f.dsts = append(f.dsts, dst)
	serve, deliver := f.serve, f.deliver
	f.mu.Unlock()
	if serve != nil {
		serve(n, b, func(resp []byte, from netip.AddrPort) { deliver(resp, from) })
	}
	f.wrote <- struct{}{}
	return len(b), nil
}

func (f *fakeConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	return f.WriteToUDPAddrPort(b, addr.(*net.UDPAddr).AddrPort())
}

func (f *fakeConn) sends() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

func (f *fakeConn) ReadFrom([]byte) (int, net.Addr, error) { select {} }
func (f *fakeConn) Close() error                           { return nil }
func (f *fakeConn) LocalAddr() net.Addr                    { return net.UDPAddrFromAddrPort(f.local) }
func (f *fakeConn) SetDeadline(time.Time) error            { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error        { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error       { return nil }

// answer builds a Binding response to req with pion/stun (an encoder
// independent of ours): success with XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS
// when legacy) and FINGERPRINT, or an error response with code when code != 0.
func answer(req []byte, mapped netip.AddrPort, legacy bool, code int) []byte {
	var id [12]byte
	copy(id[:], req[8:20])
	setters := []stun.Setter{stun.NewTransactionIDSetter(id)}
	ip := net.IP(mapped.Addr().AsSlice())
	switch {
	case code != 0:
		setters = append(setters, stun.BindingError, stun.ErrorCodeAttribute{Code: stun.ErrorCode(code), Reason: []byte("no")})
	case legacy:
		setters = append(setters, stun.BindingSuccess, &stun.MappedAddress{IP: ip, Port: int(mapped.Port())})
	default:
		setters = append(setters, stun.BindingSuccess, &stun.XORMappedAddress{IP: ip, Port: int(mapped.Port())})
	}
	setters = append(setters, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		panic(err)
	}
	return m.Raw
}
