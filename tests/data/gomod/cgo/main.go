// A tiny module for `dnsprobe cgo-deps`: one package uses cgo, one does not.
package main

import (
	"fmt"

	"example.test/cgofixture/internal/cdep"
	"example.test/cgofixture/internal/pure"
)

func main() {
	fmt.Println(cdep.Answer(), pure.Answer())
}
