package binding_test

import (
	"fmt"
	"time"

	"github.com/sipnat/sipnat/binding"
)

func ExampleKeepAliveInterval() {
	fmt.Println(binding.KeepAliveInterval(2 * time.Minute)) // measured: half of it
	fmt.Println(binding.KeepAliveInterval(0))               // unknown: the assumption
	// Output:
	// 1m0s
	// 25s
}
