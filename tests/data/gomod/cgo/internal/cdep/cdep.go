// Package cdep calls C, so the module's build needs cgo.
package cdep

// static int answer(void) { return 42; }
import "C"

// Answer returns a number computed in C.
func Answer() int { return int(C.answer()) }
