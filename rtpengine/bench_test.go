package rtpengine

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"testing"
)

// The generic way, as Go bencode libraries work and as a user without this
// package would write it: the request as a map[string]any encoded with
// sorted keys, the reply decoded into maps and slices. It is the baseline
// of BenchmarkCodec.

func genericEncode(buf *bytes.Buffer, v any) {
	switch v := v.(type) {
	case string:
		fmt.Fprintf(buf, "%d:%s", len(v), v)
	case []byte:
		fmt.Fprintf(buf, "%d:%s", len(v), v)
	case int:
		fmt.Fprintf(buf, "i%de", v)
	case []any:
		buf.WriteByte('l')
		for _, e := range v {
			genericEncode(buf, e)
		}
		buf.WriteByte('e')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('d')
		for _, k := range keys {
			genericEncode(buf, k)
			genericEncode(buf, v[k])
		}
		buf.WriteByte('e')
	}
}

func genericDecode(b []byte) (any, []byte, error) {
	if len(b) == 0 {
		return nil, nil, errors.New("end of input")
	}
	switch c := b[0]; {
	case c == 'i':
		e := bytes.IndexByte(b, 'e')
		if e < 0 {
			return nil, nil, errors.New("bad integer")
		}
		n, err := strconv.Atoi(string(b[1:e]))
		return n, b[e+1:], err
	case c == 'l' || c == 'd':
		var list []any
		rest := b[1:]
		for len(rest) > 0 && rest[0] != 'e' {
			var v any
			var err error
			if v, rest, err = genericDecode(rest); err != nil {
				return nil, nil, err
			}
			list = append(list, v)
		}
		if len(rest) == 0 {
			return nil, nil, errors.New("unterminated")
		}
		if c == 'l' {
			return list, rest[1:], nil
		}
		m := make(map[string]any, len(list)/2)
		for i := 0; i+1 < len(list); i += 2 {
			k, _ := list[i].(string)
			m[k] = list[i+1]
		}
		return m, rest[1:], nil
	default:
		colon := bytes.IndexByte(b, ':')
		if colon < 0 {
			return nil, nil, errors.New("bad string")
		}
		n, err := strconv.Atoi(string(b[:colon]))
		if err != nil || n < 0 || colon+1+n > len(b) {
			return nil, nil, errors.New("bad string length")
		}
		return string(b[colon+1 : colon+1+n]), b[colon+1+n:], nil
	}
}

const benchSDP = "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\n" +
	"m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n" +
	"a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"

// BenchmarkCodec: one offer's client-side codec work (encode the request,
// decode the reply and take its SDP), this package's against the generic
// map-based way, side by side.
func BenchmarkCodec(b *testing.B) {
	reply := append(AppendBytes([]byte("d6:result2:ok3:sdp"), []byte(benchSDP)), 'e')
	req := &Request{Command: Offer, CallID: []byte("a84b4c76e66710@pc33.atlanta.example.com"), FromTag: []byte("1928301774"),
		SDP: []byte(benchSDP), Source: netip.MustParseAddr("203.0.113.1"),
		Options: Options{SIPSource: true, ReplaceOrigin: true, ReplaceSessionConnection: true, ICE: ICERemove}}
	b.Run("sipnat", func(b *testing.B) {
		b.ReportAllocs()
		var d Decoder
		buf := make([]byte, 0, 1024)
		sdp := make([]byte, 0, 1024)
		for i := 0; i < b.N; i++ {
			buf = AppendRequest(buf[:0], []byte("cookie"), req)
			r, err := ParseReply(&d, Offer, reply, sdp[:0])
			if err != nil || len(r.SDP) != len(benchSDP) {
				b.Fatal(err)
			}
		}
	})
	b.Run("generic", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for i := 0; i < b.N; i++ {
			buf.Reset()
			buf.WriteString("cookie ")
			genericEncode(&buf, map[string]any{"command": "offer", "call-id": string(req.CallID), "from-tag": string(req.FromTag),
				"sdp": string(req.SDP), "flags": []any{"SIP-source-address"}, "replace": []any{"origin", "session-connection"},
				"ICE": "remove", "received-from": []any{"IP4", req.Source.String()}})
			v, _, err := genericDecode(reply)
			m, _ := v.(map[string]any)
			if err != nil || m["result"] != "ok" || len(m["sdp"].(string)) != len(benchSDP) {
				b.Fatal(err)
			}
		}
	})
}

// TestGenericAgrees: the baseline decodes what this package encodes to the
// same request, so the benchmark compares like with like.
func TestGenericAgrees(t *testing.T) {
	req := &Request{Command: Offer, CallID: []byte("c"), FromTag: []byte("f"), SDP: []byte(benchSDP),
		Source: netip.MustParseAddr("203.0.113.1"), Options: Options{SIPSource: true, ICE: ICERemove}}
	b := AppendRequest(nil, nil, req)[1:]
	v, rest, err := genericDecode(b)
	if err != nil || len(rest) != 0 {
		t.Fatal(err, rest)
	}
	m := v.(map[string]any)
	if m["sdp"] != benchSDP || m["ICE"] != "remove" || m["received-from"].([]any)[1] != "203.0.113.1" {
		t.Fatalf("%v", m)
	}
}
