package sipedge

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipnat/sipnat/sipmsg"
)

// endRequest is a BYE or CANCEL of the call msg builds (call-1, From tag
// ft): a BYE inside the dialog (To tag tt, CSeq 2), a CANCEL with the
// INVITE's CSeq number.
func endRequest(t *testing.T, method string) *sipmsg.Message {
	t.Helper()
	to, cseq := ";tag=tt", "2 BYE"
	if method == "CANCEL" {
		to, cseq = "", "1 CANCEL"
	}
	s := method + " sip:a@192.168.1.10:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.2;branch=z9hG4bKe\r\n" +
		"Route: <sip:203.0.113.3:5060;lr;nat=yes>\r\nFrom: <sip:a@x>;tag=ft\r\nTo: <sip:b@x>" + to +
		"\r\nCall-ID: call-1\r\nCSeq: " + cseq + "\r\nContent-Length: 0\r\n\r\n"
	var m sipmsg.Message
	require.NoError(t, m.Parse([]byte(s)))
	return &m
}

// TestTeardownSources: a BYE deletes the call's session at once only when
// it comes from a party the edge saw in the dialog, a CANCEL only from the
// source of its INVITE; a CANCEL from elsewhere is refused (not to be
// forwarded), any other BYE or CANCEL deletes only when the far side
// answers it 2xx under the edge's signed mark. Config.AnySource restores
// the trusting edge.
func TestTeardownSources(t *testing.T) {
	t.Parallel()
	stranger := netip.MustParseAddrPort("198.51.100.66:5060")
	for _, tc := range []struct {
		name      string
		method    string
		src       netip.AddrPort
		anySource bool
		unknown   bool // the edge saw nothing of the call (a restart): only the marks say it is NATed
		act       Action
		refused   bool // ErrRefused
	}{
		{name: "BYE from the caller", method: "BYE", src: ua, act: Deleted},
		{name: "BYE from the callee's side", method: "BYE", src: up, act: Deleted},
		{name: "BYE from a stranger", method: "BYE", src: stranger, act: Confirm},
		{name: "BYE from the caller's address, another port", method: "BYE", src: netip.AddrPortFrom(ua.Addr(), 40001), act: Confirm},
		{name: "CANCEL from the INVITE's source", method: "CANCEL", src: ua, act: Deleted},
		{name: "CANCEL from the callee's side", method: "CANCEL", src: up, act: Refused, refused: true},
		{name: "CANCEL from a stranger", method: "CANCEL", src: stranger, act: Refused, refused: true},
		{name: "BYE of a call the edge did not see", method: "BYE", src: ua, unknown: true, act: Confirm},
		{name: "CANCEL of a call the edge did not see", method: "CANCEL", src: ua, unknown: true, act: Confirm},
		{name: "BYE from a stranger, AnySource", method: "BYE", src: stranger, anySource: true, act: Deleted},
		{name: "CANCEL from a stranger, AnySource", method: "CANCEL", src: stranger, anySource: true, act: Deleted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, srv := newRelay(t, okSDP, time.Second)
			r.any = tc.anySource
			ctx := context.Background()
			if !tc.unknown {
				invite := msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", "SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1", "", sdpBody)
				_, act, err := r.Request(ctx, nil, invite, ua, true, "")
				require.NoError(t, err)
				require.Equal(t, Offered, act)
				if tc.method == "BYE" {
					ok := response(t, "SIP/2.0 200 OK", signedVia(t, r, "z9hG4bKnp1", Offered), "", "", sdpBody)
					_, act, err = r.Response(ctx, nil, ok, up, false, "")
					require.NoError(t, err)
					require.Equal(t, Answered, act)
				}
			}
			before, st := srv.count(), r.Stats()
			m := endRequest(t, tc.method)
			_, act, err := r.Request(ctx, nil, m, tc.src, false, "")
			require.Equal(t, tc.act, act)
			if tc.refused {
				require.ErrorIs(t, err, ErrRefused)
			} else {
				require.NoError(t, err)
			}
			if tc.act == Deleted {
				require.Equal(t, before+1, srv.count())
				require.Contains(t, srv.last(), "6:delete")
				require.Equal(t, st.Refused, r.Stats().Refused)
				return
			}
			require.Equal(t, before, srv.count(), "rtpengine heard of an untrusted %s", tc.method)
			require.Equal(t, st.Refused+1, r.Stats().Refused)
			if tc.act == Refused {
				require.True(t, r.set.Has([]byte("call-1")), "the call lives on")
				return
			}
			// Confirm: the edge forwards it marked; the far side decides
			via := string(r.AppendViaMark([]byte("SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp7"), m, act))
			require.Regexp(t, ";rtpengine=end-[0-9a-f]{16}$", via)
			cseq := "2 BYE"
			if tc.method == "CANCEL" {
				cseq = "1 CANCEL"
			}
			_, act, err = r.Response(ctx, nil, response(t, "SIP/2.0 481 Call/Transaction Does Not Exist", via, "", cseq, ""), up, false, "")
			require.NoError(t, err)
			require.Equal(t, None, act, "the far side knows no such dialog: nothing deleted")
			_, act, err = r.Response(ctx, nil, response(t, "SIP/2.0 200 OK", strings.Replace(via, "=end-", "=end-f", 1)[:len(via)], "", cseq, ""), up, false, "")
			require.ErrorIs(t, err, ErrForged)
			require.Equal(t, None, act)
			_, act, err = r.Response(ctx, nil, response(t, "SIP/2.0 200 OK", via, "call-2", cseq, ""), up, false, "")
			require.ErrorIs(t, err, ErrForged, "the mark copied to another call")
			require.Equal(t, None, act)
			require.Equal(t, before, srv.count(), "rtpengine heard of an unconfirmed %s", tc.method)
			_, act, err = r.Response(ctx, nil, response(t, "SIP/2.0 200 OK", via, "", cseq, ""), up, false, "")
			require.NoError(t, err)
			require.Equal(t, Deleted, act, "the far side ended the call")
			require.Contains(t, srv.last(), "6:delete")
			require.Equal(t, st.Confirmed+1, r.Stats().Confirmed)
		})
	}
}

// TestTeardownPublicCall: a BYE or CANCEL from anyone for a call with no
// session (public peers, nothing marked) is nobody's business: no action,
// nothing counted.
func TestTeardownPublicCall(t *testing.T) {
	t.Parallel()
	r, srv := newRelay(t, okSDP, time.Second)
	for _, method := range []string{"BYE", "CANCEL"} {
		s := method + " sip:a@198.51.100.9 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.2;branch=z9hG4bKb\r\nFrom: <sip:a@x>;tag=ft\r\n" +
			"To: <sip:b@x>;tag=tt\r\nCall-ID: public-1\r\nCSeq: 2 " + method + "\r\nContent-Length: 0\r\n\r\n"
		var m sipmsg.Message
		require.NoError(t, m.Parse([]byte(s)))
		_, act, err := r.Request(context.Background(), nil, &m, netip.MustParseAddrPort("198.51.100.66:5060"), false, "")
		require.NoError(t, err)
		require.Equal(t, None, act, method)
	}
	require.Zero(t, srv.count())
	require.Zero(t, r.Stats().Refused)
}

// TestPartiesSweep: the party table drops the calls the rtpengine.Set no
// longer holds once it has doubled, so it stays as small as the Set's
// table.
func TestPartiesSweep(t *testing.T) {
	t.Parallel()
	r, _ := newRelay(t, okSDP, time.Second)
	for i := range 3 * minSweep {
		r.parties.saw(r.set, []byte("c"+itoa(i)), ua, true)
	}
	r.parties.mu.Lock()
	n := len(r.parties.calls)
	r.parties.mu.Unlock()
	require.Less(t, n, minSweep+2, "calls the Set does not hold are swept")
	p, ok := r.parties.lookup([]byte("c" + itoa(3*minSweep-1)))
	require.True(t, ok, "the call just seen stays")
	require.Equal(t, ua, p.invite)
	for i := range 2 * maxParties {
		r.parties.saw(r.set, []byte("many"), netip.AddrPortFrom(ua.Addr(), uint16(1000+i)), false)
	}
	p, _ = r.parties.lookup([]byte("many"))
	require.True(t, p.has(netip.AddrPortFrom(ua.Addr(), uint16(1000+2*maxParties-1))), "the newest source is kept")
	require.False(t, p.has(netip.AddrPortFrom(ua.Addr(), 1000)), "the oldest gave way")
	require.False(t, (&party{}).has(netip.AddrPort{}), "no source is no party")
}

// TestTeardownOnce: a BYE or CANCEL an edge on the way marked (it deleted
// the session, or waits for the 2xx) is left alone by the next edge, or by
// the same edge when the request passes it again.
func TestTeardownOnce(t *testing.T) {
	t.Parallel()
	r, srv := newRelay(t, okSDP, time.Second)
	ctx := context.Background()
	invite := msg(t, "INVITE sip:b@198.51.100.2 SIP/2.0", "SIP/2.0/UDP 192.168.1.10:5070;branch=z9hG4bK1", "", sdpBody)
	_, act, err := r.Request(ctx, nil, invite, ua, true, "")
	require.NoError(t, err)
	require.Equal(t, Offered, act)
	for _, kind := range []string{"ended", "end"} {
		for _, method := range []string{"BYE", "CANCEL"} {
			m := endRequest(t, method)
			s := strings.Replace(string(m.Bytes()), "Via: ", "Via: SIP/2.0/UDP 203.0.113.3:5060;branch=z9hG4bKnp5;rtpengine="+kind+"-0123456789abcdef\r\nVia: ", 1)
			var marked sipmsg.Message
			require.NoError(t, marked.Parse([]byte(s)))
			_, act, err := r.Request(ctx, nil, &marked, up, false, "")
			require.NoError(t, err)
			require.Equal(t, None, act, "%s marked %s", method, kind)
		}
	}
	require.Equal(t, 1, srv.count(), "only the offer")
	require.Zero(t, r.Stats().Refused)
}
