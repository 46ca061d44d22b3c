//go:build !linux

package shadow

import "time"

// sleepBriefly sleeps for d; outside Linux, as long as time.Sleep takes
// (about a millisecond at least on an idle process).
func sleepBriefly(d time.Duration) { time.Sleep(d) }
