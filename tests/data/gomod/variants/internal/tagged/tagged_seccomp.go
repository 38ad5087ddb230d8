//go:build cgo && seccomp

// Package tagged stands for runc's seccomp support: cgo only with the seccomp build tag.
package tagged

// static int filter(void) { return 1; }
import "C"

// Filter reports whether a filter is installed.
func Filter() bool { return C.filter() == 1 }
