//go:build cgo

// Package fallback adds in C when cgo is on and in Go otherwise: both work.
package fallback

// static int add(int a, int b) { return a + b; }
import "C"

// Sum adds two numbers.
func Sum(a, b int) int { return int(C.add(C.int(a), C.int(b))) }
