package keepalive

import (
	"strconv"

	"github.com/sipnat/sipnat/sipmsg"
)

// OptionsBuilder returns a KeeperConfig.Request for the Options kind that appends
// r as built by sipmsg.AppendOptions, with CSeq n and the branch r.Branch
// followed by "." and n, so that every keep-alive is a new transaction
// (RFC 3261 §8.1.1.7) within one Call-ID.
func OptionsBuilder(r sipmsg.OptionsRequest) func(dst []byte, n uint32) []byte {
	base := r.Branch
	var branch []byte
	return func(dst []byte, n uint32) []byte {
		branch = append(append(append(branch[:0], base...), '.'), strconv.FormatUint(uint64(n), 10)...)
		req := r
		req.Branch = string(branch)
		req.CSeq = n
		return sipmsg.AppendOptions(dst, req)
	}
}
