// Package pure is plain Go.
package pure

// Answer returns a number computed in Go.
func Answer() int { return 7 }
