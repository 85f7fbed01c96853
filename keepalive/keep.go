package keepalive

import (
	"time"

	"github.com/sipnat/sipnat/sipmsg"
)

// maxKeep bounds a keep value (one day): larger values are not a keep-alive
// interval a NAT could honour, and the bound keeps the arithmetic safe.
const maxKeep = 86400

// KeepFromVia returns the interval of the RFC 6223 "keep" parameter in the
// parameters of one via-parm (";branch=...;keep=30", the Params span of a
// sipmsg.Via), and false when there is none, it has no value (the UA's own
// offer), or the value is not a whole number of seconds from 1 to 86400.
// Quoted parameter values are skipped. It does not allocate.
func KeepFromVia(params []byte) (time.Duration, bool) {
	i := 0
	for i < len(params) {
		// find the next ';' outside quotes
		for i < len(params) && params[i] != ';' {
			if params[i] == '"' {
				i = skipQuoted(params, i)
				continue
			}
			i++
		}
		if i >= len(params) {
			break
		}
		i++ // past ';'
		j := skipSpace(params, i)
		ns := j
		for j < len(params) && params[j] != '=' && params[j] != ';' && params[j] != ' ' && params[j] != '\t' {
			j++
		}
		name := params[ns:j]
		j = skipSpace(params, j)
		if !isKeep(name) || j >= len(params) || params[j] != '=' {
			i = j
			continue
		}
		j = skipSpace(params, j+1)
		vs := j
		n := 0
		for j < len(params) && params[j] >= '0' && params[j] <= '9' {
			if n = n*10 + int(params[j]-'0'); n > maxKeep {
				return 0, false
			}
			j++
		}
		j = skipSpace(params, j)
		if j == vs || (j < len(params) && params[j] != ';') || n == 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	return 0, false
}

// KeepFromResponse returns the keep interval in the top Via of a response
// that m holds (sipmsg.Message.Parse), the value a registrar or edge proxy
// asks the UA to honour (RFC 6223 §4.3). Use it as Timing.Negotiated.
func KeepFromResponse(m *sipmsg.Message) (time.Duration, bool) {
	v, err := m.ParseTopVia()
	if err != nil {
		return 0, false
	}
	return KeepFromVia(v.Params.In(m.Bytes()))
}

func isKeep(name []byte) bool {
	return len(name) == 4 && name[0]|0x20 == 'k' && name[1]|0x20 == 'e' && name[2]|0x20 == 'e' && name[3]|0x20 == 'p'
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// skipQuoted returns the index after the quoted string starting at b[i].
func skipQuoted(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}
