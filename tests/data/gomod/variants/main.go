// A module for `dnsprobe cgo-deps` whose cgo packages differ in what they do without cgo: a stub that
// fails at run time, a real pure-Go fallback, a fallback that does not compile, and cgo behind a tag.
package main

import (
	"fmt"

	"example.test/variants/internal/broken"
	"example.test/variants/internal/fallback"
	"example.test/variants/internal/stubbed"
	"example.test/variants/internal/tagged"
)

func main() {
	fmt.Println(stubbed.Open(), fallback.Sum(2, 3), broken.Answer(), tagged.Filter())
}
