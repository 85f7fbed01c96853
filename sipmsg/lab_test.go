package sipmsg_test

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/sipmsg"
)

var kamailio = netip.AddrPortFrom(netlab.Server1, netlab.KamailioPort)

// exchange sends req to dst on c (retransmitting every 500 ms, RFC 3261
// timer A style) until a final response arrives, and returns it.
func exchange(t *testing.T, c *net.UDPConn, req []byte, dst netip.AddrPort) []byte {
	t.Helper()
	buf := make([]byte, 65535)
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		_, err := c.WriteToUDPAddrPort(req, dst)
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(500*time.Millisecond)))
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break // retransmit
			}
			var m sipmsg.Message
			if m.Parse(buf[:n]) == nil && !m.IsRequest() && m.StatusCode() >= 200 {
				return append([]byte(nil), buf[:n]...)
			}
		}
	}
	t.Fatalf("no final response from %v", dst)
	return nil
}

func register(local netip.AddrPort, contact []byte, branch string) []byte {
	var b []byte
	b = append(b, "REGISTER sip:203.0.113.2 SIP/2.0\r\nVia: SIP/2.0/UDP "...)
	b = append(b, local.String()...)
	b = append(b, ";branch=z9hG4bK"+branch+";rport\r\nMax-Forwards: 70\r\n"...)
	b = append(b, "From: <sip:alice@203.0.113.2>;tag=lab1\r\nTo: <sip:alice@203.0.113.2>\r\n"...)
	b = append(b, "Call-ID: reg-"+branch+"\r\nCSeq: 1 REGISTER\r\nContact: "...)
	b = append(b, contact...)
	b = append(b, "\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"...)
	return b
}

// answer builds a 200 OK to request m (Via, From, To, Call-ID and CSeq
// copied, RFC 3261 §8.2.6).
func answer(m *sipmsg.Message) []byte {
	b := []byte("SIP/2.0 200 OK\r\n")
	for i := 0; i < m.NumHeaders(); i++ {
		switch m.HeaderKind(i) {
		case sipmsg.HdrVia, sipmsg.HdrFrom, sipmsg.HdrCallID, sipmsg.HdrCSeq, sipmsg.HdrRecordRoute:
			s := m.HeaderLineSpan(i)
			b = append(b, s.In(m.Bytes())...)
		case sipmsg.HdrTo:
			b = append(b, "To: "...)
			b = append(b, m.HeaderValue(i)...)
			b = append(b, ";tag=ua1\r\n"...)
		}
	}
	return append(b, "Content-Length: 0\r\n\r\n"...)
}

// TestLabRegister: a UA made of sipmsg and a UDP socket registers through
// each NAT kind to kamailio (nathelper), learns its public address from the
// 200 OK, re-registers with it, and kamailio then reaches it with an
// OPTIONS relayed from the WAN. With the kernel SIP ALG the ALG detector
// fires; without it, it does not.
func TestLabRegister(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind  netlab.Kind
		alg   bool
		cgnat bool
	}{
		{netlab.EIMEIF, false, false}, {netlab.EIMADF, false, false}, {netlab.EIMAPDF, false, false},
		{netlab.ADMAPDF, false, false}, {netlab.APDM, false, false}, {netlab.None, false, false},
		{netlab.EIMAPDF, true, false}, {netlab.APDM, true, false},
		{netlab.EIMAPDF, false, true}, // home NAT behind a carrier-grade NAT
	}
	for _, tt := range tests {
		name := string(tt.kind)
		if tt.alg {
			name += "+alg"
		}
		if tt.cgnat {
			name += "+cgnat"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{Kind: tt.kind, Kamailio: true, ALG: tt.alg, CGNAT: tt.cgnat})
			truth := lab.Truth()
			conn := lab.ListenUDP(netlab.LAN, netip.AddrPortFrom(truth.Client, 5060))
			local := netip.AddrPortFrom(truth.Client, 5060)

			// 1. REGISTER with the local address, as a UA that knows nothing yet
			ct := sipmsg.NewContactTracker(local, kamailio, sipmsg.UDP)
			reqB := register(local, ct.AppendContact(nil, "alice", ""), "r1")
			respB := exchange(t, conn, reqB, kamailio)
			var req, resp sipmsg.Message
			require.NoError(t, req.Parse(reqB))
			require.NoError(t, resp.Parse(respB))
			require.Equal(t, 200, resp.StatusCode(), "%s", respB)

			// 2. the ALG detector
			rep, err := sipmsg.DetectALG(&req, &resp, kamailio)
			require.NoError(t, err)
			require.Equal(t, tt.alg, rep.Tampered(), "signs %v\n%s", rep.Signs, respB)

			// 3. what the registrar saw and stored
			u := ct.Observe(&resp, kamailio)
			dump, err := lab.KamailioRPC("ul.dump")
			require.NoError(t, err)
			switch {
			case tt.kind == netlab.None:
				require.False(t, u.Reregister, "no NAT: nothing to learn")
				require.Equal(t, local, u.Public)
				require.Contains(t, dump, "Received: [not set]")
			case tt.alg:
				// the ALG hid the NAT from the registrar: it stored the
				// rewritten Contact and no received address
				require.Contains(t, dump, "Address: sip:alice@203.0.113.1:")
				require.Contains(t, dump, "Received: [not set]")
			default:
				require.True(t, u.Reregister)
				require.Equal(t, truth.Public, u.Public.Addr())
				if truth.PortPreservation {
					require.Equal(t, local.Port(), u.Public.Port())
				}
				require.Contains(t, dump, "Address: sip:alice@"+local.String())
				require.Contains(t, dump, "Received: sip:"+u.Public.String(), dump)
			}

			// 4. register again with what the 200 OK taught (PJSIP's
			// allow_contact_rewrite): the registrar now sees no NAT
			if u.Reregister {
				reqB = register(local, ct.AppendContact(nil, "alice", ""), "r2")
				require.NoError(t, resp.Parse(exchange(t, conn, reqB, kamailio)))
				require.Equal(t, 200, resp.StatusCode())
				require.False(t, ct.Observe(&resp, kamailio).Reregister, "stable public address")
				dump, err = lab.KamailioRPC("ul.dump")
				require.NoError(t, err)
				require.Contains(t, dump, "Address: sip:alice@"+u.Public.String())
			}

			// 5. kamailio reaches the UA: an OPTIONS from the WAN for
			// alice is relayed (lookup + t_relay) through the NAT
			wan := lab.ListenUDP(netlab.WAN, netip.AddrPortFrom(netlab.Peer, 0))
			wanAddr := netip.AddrPortFrom(netlab.Peer, uint16(wan.LocalAddr().(*net.UDPAddr).Port))
			opt := sipmsg.AppendOptions(nil, sipmsg.OptionsRequest{
				RequestURI: "sip:alice@203.0.113.2", From: "sip:peer@198.51.100.2", To: "sip:alice@203.0.113.2",
				SentBy: wanAddr, Branch: "opt" + strconv.Itoa(int(wanAddr.Port())), CallID: "opt-" + name, CSeq: 1,
			})
			got := make(chan error, 1)
			go func() {
				buf := make([]byte, 65535)
				_ = conn.SetReadDeadline(time.Now().Add(8 * time.Second))
				for {
					n, from, err := conn.ReadFromUDPAddrPort(buf)
					if err != nil {
						got <- err
						return
					}
					var m sipmsg.Message
					if m.Parse(buf[:n]) != nil || !m.IsMethod("OPTIONS") {
						continue
					}
					_, err = conn.WriteToUDPAddrPort(answer(&m), from)
					got <- err
					return
				}
			}()
			final := exchange(t, wan, opt, kamailio)
			require.NoError(t, <-got, "the OPTIONS did not reach the UA")
			var fm sipmsg.Message
			require.NoError(t, fm.Parse(final))
			require.Equal(t, 200, fm.StatusCode(), "%s", final)
			to, _ := fm.Get(sipmsg.HdrTo)
			require.True(t, strings.Contains(string(to), "tag=ua1"), "the 200 OK came from the UA: %s", final)
		})
	}
}
