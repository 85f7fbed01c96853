package outbound

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/internal/netlab"
	"github.com/sipnat/sipnat/sipmsg"
)

// TestFlowRejected: a 430 Flow Failed answer to a request the UA sent over
// its flow (the edge lost the flow: it restarted, or dropped it) fails the
// flow as an unanswered keep-alive does: the request still gets its
// answer, FlowFailed says ErrFlowRejected, and a new flow registers at once
// (Reformed: dialogs need a target refresh). Another failure answer, a
// 404, leaves the flow alone.
func TestFlowRejected(t *testing.T) {
	t.Parallel()
	certs, err := netlab.MakeCerts(t.TempDir(), "", "edge.example", netip.MustParseAddr("127.0.0.1"))
	require.NoError(t, err)
	for _, tr := range []sipmsg.Transport{sipmsg.UDP, sipmsg.TCP, sipmsg.TLS} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			te := newTestEdge(t, EdgeConfig{FlowTimer: 25 * time.Second, TLS: &tls.Config{Certificates: []tls.Certificate{certs.Server}}})
			var addr netip.AddrPort
			if tr == sipmsg.UDP {
				addr = te.servePacket(t)
			} else {
				addr = te.serve(t, tr)
			}
			ctx := t.Context()
			go func() { // the edge answers the UA's requests with the code their Call-ID names
				for {
					var b []byte
					select {
					case b = <-te.other:
					case <-ctx.Done():
						return
					}
					var m sipmsg.Message
					if m.Parse(b) != nil {
						continue
					}
					var code int
					cid, _ := m.Get(sipmsg.HdrCallID)
					_, _ = fmt.Sscanf(string(cid), "c%d", &code)
					resp, err := sipmsg.AppendResponse(nil, &m, code, "Answer", "edge", "")
					if err == nil {
						_ = te.Send(te.lastFlow(), resp)
					}
				}
			}()
			ev := newEvents()
			f := runFlow(t, FlowConfig{
				Transport: tr, Server: addr, ServerName: "edge.example", RootCAs: certs.Roots,
				Register: registerFunc(1), OnEvent: ev.on,
			})
			first := ev.wait(t, Registered)
			request := func(code int) int {
				req := fmt.Sprintf("OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=z9hG4bKc%d;rport\r\n"+
					"From: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\nCall-ID: c%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
					tr, f.Local(), code, code)
				resp, err := f.Transact(ctx, []byte(req))
				require.NoError(t, err, "the request gets its answer")
				var m sipmsg.Message
				require.NoError(t, m.Parse(resp))
				return m.StatusCode()
			}

			require.Equal(t, 404, request(404))
			require.Equal(t, sipmsg.StatusFlowFailed, request(sipmsg.StatusFlowFailed))
			e := ev.wait(t, FlowFailed) // the first: the 404 failed nothing
			require.ErrorIs(t, e.Err, ErrFlowRejected)
			require.ErrorIs(t, e.Err, ErrFlowFailed)
			require.Contains(t, e.Err.Error(), "430 Flow Failed (to 1 OPTIONS)")
			re := ev.wait(t, Registered)
			require.True(t, re.Reformed, "registered again on a new flow")
			require.NotEqual(t, first.Local, re.Local, "a new connection, a new Contact")
		})
	}
}
