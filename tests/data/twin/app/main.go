// Command app stands in for a user's service in dnsprobe's tests: it resolves its database's name at
// start-up, as services do. The tests only build it and read the binary; it is never run.
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	addrs, err := net.LookupHost(os.Getenv("APP_DB_HOST"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
	fmt.Println(addrs)
}
