//go:build linux

package wasm

import "syscall"

// mapNoReserve keeps a large reservation from counting against overcommit
// limits before the guest uses it.
const mapNoReserve = syscall.MAP_NORESERVE
