package benchfloor_test

import (
	"fmt"

	"github.com/sipnat/sipnat/internal/benchfloor"
)

func ExampleReplace() {
	src := []byte("c=IN IP4 192.168.1.10\r\nm=audio 50000 RTP/AVP 0\r\n")
	out := benchfloor.Replace(nil, src, benchfloor.Pairs("192.168.1.10", "203.0.113.1", "50000", "40000"))
	fmt.Printf("%q\n", out)
	// Output: "c=IN IP4 203.0.113.1\r\nm=audio 40000 RTP/AVP 0\r\n"
}
