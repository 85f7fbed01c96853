package rtt_test

import (
	"fmt"
	"time"

	"github.com/sipnat/sipnat/internal/rtt"
)

func ExampleEstimator() {
	var e rtt.Estimator
	fmt.Println(e.RTO(time.Second, 10*time.Second)) // no sample: the upper bound
	e.Add(40 * time.Millisecond)
	fmt.Println(e.RTO(0, 10*time.Second))           // 3 RTT after one sample
	fmt.Println(e.RTO(time.Second, 10*time.Second)) // RFC 6298's 1 s floor
	// Output:
	// 10s
	// 120ms
	// 1s
}
