//go:build linux

package wasm

import "syscall"

// totalRAM is the machine's physical memory in bytes, 0 when unknown.
func totalRAM() int64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}
