// A tiny module with no cgo of its own; net still has cgo files in the standard library.
package main

import (
	"fmt"
	"net"
)

func main() {
	fmt.Println(net.JoinHostPort("localhost", "53"))
}
