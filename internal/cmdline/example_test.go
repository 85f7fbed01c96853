package cmdline_test

import (
	"bytes"
	"fmt"

	"github.com/sipnat/sipnat/internal/cmdline"
)

func Example() {
	var stderr bytes.Buffer
	fs := cmdline.NewFlagSet("hello", "hello greets.", &stderr)
	name := fs.String("name", "world", "who to greet")
	err := cmdline.Parse(fs, []string{"-name", "sip"})
	fmt.Println("hello,", *name, cmdline.Status("hello", err, &stderr))
	// Output: hello, sip 0
}
