// A small service of the test suite's own for `dnsprobe observe`: it looks up each name given on the
// command line, one after another, logs what happened the way a service would, and exits 1 when any
// lookup failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"time"
)

func main() {
	hold := flag.Duration("hold", 0, "keep running this long after the lookups (a long-lived service)")
	flag.Parse()
	log.SetFlags(0)
	log.Printf("starting: %d names to resolve", flag.NArg())
	failed := 0
	for _, name := range flag.Args() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		addrs, err := net.DefaultResolver.LookupHost(ctx, name)
		cancel()
		took := time.Since(start).Round(time.Millisecond)
		if err != nil {
			failed++
			log.Printf("connecting to %s: %v (after %s)", name, err, took)
			continue
		}
		fmt.Printf("%s %v %s\n", name, addrs, took)
	}
	if failed > 0 {
		log.Printf("giving up: %d of %d lookups failed", failed, flag.NArg())
		os.Exit(1)
	}
	log.Printf("ready")
	time.Sleep(*hold)
}
