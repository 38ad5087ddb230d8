//go:build cgo

// Package stubbed stands for go-sqlite3: it needs cgo, and without it compiles a stub.
package stubbed

// static int ok(void) { return 0; }
import "C"

// Open returns nil when the C library answered.
func Open() error {
	if C.ok() != 0 {
		return errFailed
	}
	return nil
}
