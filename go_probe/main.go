// Command probe is dnsprobe's Go probe: an HTTP API (on a unix socket or a loopback port) that performs
// DNS lookups through net.DefaultResolver and reports Go-measured latency and an outcome class for each.
//
// It prints exactly one line to stdout, "listening on <addr>", and nothing of its own to stderr except
// one "dnsprobe-probe: <error>" line on a fatal start error: stderr carries Go's GODEBUG=netdns trace,
// which the harness parses.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// probe holds what the handlers share. resolver is net.DefaultResolver except in tests.
type probe struct {
	resolver *net.Resolver
	names    *nameGen
	info     infoResponse
}

func (p *probe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/info":
		p.handleInfo(w, r)
	case "/batch":
		p.handleBatch(w, r)
	case "/loop":
		p.handleLoop(w, r)
	default:
		writeError(w, http.StatusNotFound, "no such endpoint "+r.URL.Path+" (want /info, /batch or /loop)")
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	started := time.Now()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "dnsprobe-probe: %v\n", err)
		return 1
	}
	flags := flag.NewFlagSet("dnsprobe-probe", flag.ContinueOnError)
	flags.SetOutput(io.Discard) // errors are reported in our own one line
	listen := flags.String("listen", "", "unix:/path/to.sock or HOST:PORT (PORT may be 0)")
	mode := flags.String("mode", "", "label echoed by /info")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: probe -listen unix:/path/to.sock|127.0.0.1:PORT [-mode NAME]")
			return 0
		}
		return fail(err)
	}
	if flags.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q", flags.Arg(0)))
	}
	if *listen == "" {
		return fail(errors.New("-listen is required (unix:/path/to.sock or 127.0.0.1:PORT)"))
	}

	// Before listening: a SIGTERM that arrives while starting up is then handled like any other.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	ln, addr, cleanup, err := listenOn(*listen)
	if err != nil {
		return fail(err)
	}
	defer cleanup()

	p := &probe{resolver: net.DefaultResolver, names: newNameGen(), info: newInfo(*mode, started)}
	// Cancelled on SIGTERM/SIGINT: in-flight lookups end and handlers return, so Shutdown is quick.
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          log.New(io.Discard, "", 0), // keep stderr for Go's resolver trace only
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on %s\n", addr)

	select {
	case <-signals:
		cancel()
		ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		return 0
	case err := <-served:
		return fail(err)
	}
}

// listenOn opens the listener for -listen and returns the address to announce (the flag's syntax, with
// the actual port for TCP) and a cleanup that removes a unix socket file.
func listenOn(spec string) (net.Listener, string, func(), error) {
	path, isUnix := strings.CutPrefix(spec, "unix:")
	if !isUnix {
		ln, err := net.Listen("tcp", spec)
		if err != nil {
			return nil, "", nil, err
		}
		return ln, ln.Addr().String(), func() {}, nil
	}
	if path == "" {
		return nil, "", nil, errors.New("-listen unix: needs a path")
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, "", nil, err
	}
	cleanup := func() {
		ln.Close()
		os.Remove(path)
	}
	return ln, spec, cleanup, nil
}

// removeStaleSocket removes a socket file left by a probe that is gone. It refuses to remove anything
// that is not a socket, or a socket something still answers on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: a running process is listening on it", path)
	}
	return os.Remove(path)
}

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeJSON sends v as one JSON line with a Content-Length, encoded into a pooled buffer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := bufferPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			bufferPool.Put(buf)
		}
	}()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		json.NewEncoder(buf).Encode(map[string]string{"error": "encoding the response: " + err.Error()})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// writeError sends {"error": msg} on one line.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// decodeJSON reads exactly one JSON object into v. Unknown fields are an error: a misspelt
// "timeout_ms" would otherwise silently run with the default.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("bad JSON body: more data after the object")
	}
	return nil
}
