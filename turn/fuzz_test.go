package turn_test

import (
	"testing"

	"github.com/pion/stun/v2"
)

// FuzzHandlePacket feeds anything to HandlePacket as if from the server:
// ChannelData, Data indications, STUN answers, garbage. It must never
// panic, and relayed payloads must lie inside the packet.
func FuzzHandlePacket(f *testing.F) {
	s := newFakeServer(f)
	c, _ := newFakeClient(f, s, nil)
	allocate(f, c)
	f.Add([]byte{0x40, 0x00, 0x00, 0x03, 'r', 't', 'p'})
	f.Add([]byte{0x40, 0x00, 0xff, 0xff, 'r'})
	f.Add(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodData, stun.ClassIndication)).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingSuccess).Raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, _, _ := c.HandlePacket(b, s.addr)
		if len(p) > len(b) {
			t.Fatalf("payload of %d bytes from a %d-byte packet", len(p), len(b))
		}
	})
}
