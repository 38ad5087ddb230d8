// Command cgodebug is the test suite's service whose main package asks for the C library's resolver with a
// //go:debug line, so that the setting is compiled into its DefaultGODEBUG. It is only built and read.

//go:debug netdns=cgo
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	addrs, err := net.LookupHost(os.Getenv("APP_DB_HOST"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgodebug:", err)
		os.Exit(1)
	}
	fmt.Println(addrs)
}
