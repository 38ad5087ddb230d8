//go:build cgo

// Package broken has a Go file without a build constraint that calls what only the cgo file defines:
// it has Go files without cgo, but they do not compile.
package broken

// static int answer(void) { return 42; }
import "C"

func fromC() int { return int(C.answer()) }
