package sipmsg

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"strconv"
	"testing"
)

// BenchmarkStreamFraming cuts a TCP stream of INVITEs and keep-alives into
// messages: StreamReader (bounded buffer, no copy) beside what a Go
// programmer writes without it, net/textproto's MIME header reader on a
// bufio.Reader followed by io.ReadFull of the body.
func BenchmarkStreamFraming(b *testing.B) {
	msg := benchInvite(b)
	const n = 64
	var stream []byte
	for i := 0; i < n; i++ {
		stream = append(stream, msg...)
		stream = append(stream, "\r\n\r\n"...)
	}
	r := bytes.NewReader(stream)
	b.Run("StreamReader", func(b *testing.B) {
		s := NewStreamReader(r, StreamConfig{})
		b.SetBytes(int64(len(stream)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r.Reset(stream)
			s.start, s.end, s.err = 0, 0, nil
			msgs := 0
			for {
				k, _, err := s.Next()
				if err != nil {
					break
				}
				if k == FrameMessage {
					msgs++
				}
			}
			if msgs != n {
				b.Fatalf("%d messages", msgs)
			}
		}
	})
	b.Run("textproto", func(b *testing.B) {
		br := bufio.NewReader(r)
		b.SetBytes(int64(len(stream)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r.Reset(stream)
			br.Reset(r)
			tp := textproto.NewReader(br)
			msgs := 0
			for {
				line, err := tp.ReadLine()
				if err != nil {
					break
				}
				if line == "" {
					continue // keep-alive
				}
				h, err := tp.ReadMIMEHeader()
				if err != nil {
					b.Fatal(err)
				}
				cl, _ := strconv.Atoi(h.Get("Content-Length"))
				body := make([]byte, cl)
				if _, err := io.ReadFull(br, body); err != nil {
					b.Fatal(err)
				}
				msgs++
			}
			if msgs != n {
				b.Fatalf("%d messages", msgs)
			}
		}
	})
}
