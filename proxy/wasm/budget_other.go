//go:build !linux

package wasm

// totalRAM is unknown here; DefaultMemoryLimit then uses its 1GiB.
func totalRAM() int64 { return 0 }
