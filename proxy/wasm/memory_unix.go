//go:build unix

package wasm

import "syscall"

// reserveLinear maps limit bytes of zeroed, private memory for one linear
// memory, outside the Go heap: pages cost RAM only once the guest touches
// them, growing never copies (the capacity is the cap), and releasing the
// mapping returns the RAM to the system at once instead of whenever the
// Go runtime's scavenger gets to it — what makes an idle route's memory
// really go away.
func reserveLinear(limit uint64) []byte {
	b, err := syscall.Mmap(-1, 0, int(limit), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|mapNoReserve)
	if err != nil {
		return nil // the caller falls back to the Go heap
	}
	return b[:0]
}

// releaseLinear unmaps a buffer from reserveLinear; mapped reports whether
// it was one.
func releaseLinear(b []byte, mapped bool) {
	if mapped {
		_ = syscall.Munmap(b[:cap(b)])
	}
}
