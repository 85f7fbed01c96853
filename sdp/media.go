package sdp

import (
	"bytes"
	"errors"
	"net/netip"
)

// ErrNoMedia is returned by MediaAddr when the body has no stream of the
// kind asked for with a usable address and port.
var ErrNoMedia = errors.New("sdp: no such media stream with an address and port")

// MediaAddr returns where the first stream of the given media ("audio",
// "video") wants its RTP: the stream's c= address (or the session's) and
// its m= port. A UA sends its media there (and, with symmetric RTP, from
// the socket it receives on). Port 0 (a refused stream) and FQDNs give
// ErrNoMedia. It does not allocate.
func MediaAddr(body []byte, media string) (netip.AddrPort, error) {
	var session, stream netip.Addr
	var port uint16
	in := false    // inside the stream asked for
	seenM := false // past the session section
	found := false
	for i := 0; i < len(body); {
		l := nextLine(body, i)
		i = l.next
		b := body[l.start:l.end]
		switch kind(b) {
		case 'm':
			if found {
				i = len(body)
				continue
			}
			seenM = true
			v := b[2:]
			in = len(v) > len(media) && bytes.HasPrefix(v, []byte(media)) && isBlank(v[len(media)])
			if in {
				_, p, ok := parseMediaPort(v)
				if !ok || p == 0 {
					in = false
					continue
				}
				port, found = p, true
			}
		case 'c':
			v := b[2:]
			_, a, ok := parseConnValue(v, nil)
			if !ok {
				continue
			}
			ip, err := netip.ParseAddr(string(v[a.s:a.e]))
			if err != nil {
				continue
			}
			switch {
			case in:
				stream = ip
			case !seenM:
				session = ip
			}
		}
	}
	addr := stream
	if !addr.IsValid() {
		addr = session
	}
	if !found || !addr.IsValid() {
		return netip.AddrPort{}, ErrNoMedia
	}
	return netip.AddrPortFrom(addr.Unmap(), port), nil
}
