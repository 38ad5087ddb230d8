//go:build !cgo

package stubbed

import "errors"

// Open always fails: this is a stub, so the program compiles with CGO_ENABLED=0 and fails at run time.
func Open() error {
	return errors.New("stubbed: binary was compiled with CGO_ENABLED=0, this package requires cgo to work; this is a stub")
}
