package broken

// Answer returns the C library's answer.
func Answer() int { return fromC() }
