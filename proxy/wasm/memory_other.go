//go:build !unix

package wasm

// reserveLinear has no mapping to offer here; linear memory lives on the
// Go heap.
func reserveLinear(uint64) []byte { return nil }

func releaseLinear([]byte, bool) {}
