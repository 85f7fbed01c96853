package linefeed_test

import (
	"fmt"

	"github.com/sipnat/sipnat/internal/linefeed"
)

func ExampleIter() {
	b := []byte("v=0\r\ns=-\r\nt=0 0")
	var it linefeed.Iter
	it.Reset(b)
	for start := 0; start < len(b); {
		end := it.End()
		fmt.Printf("%q\n", b[start:end])
		start = end + 1
	}
	// Output:
	// "v=0\r"
	// "s=-\r"
	// "t=0 0"
}
