package shadow

import (
	"syscall"
	"time"
)

// sleepBriefly sleeps for d, to within the kernel's timer slack (~50 µs).
// time.Sleep cannot wait less than about a millisecond on an idle process:
// its wake-up rides on the network poller's epoll timeout, which counts in
// milliseconds. A worker waiting for the proxy to settle is a background
// goroutine; holding its thread in nanosleep for a fraction of a
// millisecond cost the clients nothing measurable even with both cores
// saturated (bench/shadow-overhead.sh, closed phase).
func sleepBriefly(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}
