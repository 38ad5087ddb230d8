package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// lookupFunc performs one resolver call and returns the number of answer values it produced.
type lookupFunc func(ctx context.Context, r *net.Resolver, name string) (int, error)

// kinds maps the API's "kind" to the Go call it makes. Answer counts are counted even when an error
// comes with partial results (LookupMX, LookupSRV, ... may return valid records alongside an error).
var kinds = map[string]lookupFunc{
	"host": func(ctx context.Context, r *net.Resolver, name string) (int, error) {
		addrs, err := r.LookupHost(ctx, name)
		return len(addrs), err
	},
	"ip": func(ctx context.Context, r *net.Resolver, name string) (int, error) {
		addrs, err := r.LookupIPAddr(ctx, name)
		return len(addrs), err
	},
	"ip4": func(ctx context.Context, r *net.Resolver, name string) (int, error) {
		ips, err := r.LookupIP(ctx, "ip4", name)
		return len(ips), err
	},
	"ip6": func(ctx context.Context, r *net.Resolver, name string) (int, error) {
		ips, err := r.LookupIP(ctx, "ip6", name)
		return len(ips), err
	},
	"cname": func(ctx context.Context, r *net.Resolver, name string) (int, error) {
		cname, err := r.LookupCNAME(ctx, name)
		if cname == "" {
			return 0, err
		}
		return 1, err
	},
	"srv": func(ctx context.Context, r *net.Resolver, name string) (int, error) {
		_, srvs, err := r.LookupSRV(ctx, "", "", name)
		return len(srvs), err
	},
	"txt": func(ctx context.Context, r *net.Resolver, name string) (int, error) {
		// One value per TXT record (Go joins the character-strings of a record into one string).
		txts, err := r.LookupTXT(ctx, name)
		return len(txts), err
	},
	"mx": func(ctx context.Context, r *net.Resolver, name string) (int, error) {
		mxs, err := r.LookupMX(ctx, name)
		return len(mxs), err
	},
	"ns": func(ctx context.Context, r *net.Resolver, name string) (int, error) {
		nss, err := r.LookupNS(ctx, name)
		return len(nss), err
	},
	"ptr": func(ctx context.Context, r *net.Resolver, name string) (int, error) {
		names, err := r.LookupAddr(ctx, name)
		return len(names), err
	},
}

// result is one lookup as the API reports it.
type result struct {
	Name      string `json:"name"`
	StartNS   int64  `json:"start_ns"`   // wall clock, Unix nanoseconds
	LatencyNS int64  `json:"latency_ns"` // monotonic clock
	Outcome   string `json:"outcome"`
	Error     string `json:"error"`
	Answers   int    `json:"answers"`
	// IntendedNS is set in open-loop batches: when the lookup was meant to start (Unix ns).
	IntendedNS int64 `json:"intended_ns,omitempty"`
}

// lookupOnce runs fn for name under its own timeout. Only the resolver call is timed: the context is
// made before the clock starts.
func lookupOnce(parent context.Context, r *net.Resolver, fn lookupFunc, name string, timeout time.Duration) result {
	ctx, cancel := context.WithTimeout(parent, timeout)
	start := time.Now()
	answers, err := fn(ctx, r, name)
	latency := time.Since(start)
	cancel()
	res := result{
		Name:      name,
		StartNS:   start.UnixNano(),
		LatencyNS: int64(latency),
		Outcome:   classify(err),
		Answers:   answers,
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

// nameGen expands name templates. Go merges concurrent lookups of one name into one query, so a load
// test needs a fresh name per lookup: {rand} becomes 16 lowercase hex characters, 8 from a per-process
// random value and 8 from a per-process counter (unique until the counter wraps at 2^32 lookups), and
// {seq} becomes the counter in decimal. One expansion takes one counter value, shared by every
// placeholder in that name.
type nameGen struct {
	prefix string // 8 hex characters, fixed for the process
	seq    atomic.Uint64
}

func newNameGen() *nameGen {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux; the clock is a good enough fallback for a label.
		binary.BigEndian.PutUint32(b[:], uint32(time.Now().UnixNano()))
	}
	return &nameGen{prefix: hex8(binary.BigEndian.Uint32(b[:]))}
}

func (g *nameGen) expand(tmpl string) string {
	hasRand := strings.Contains(tmpl, "{rand}")
	hasSeq := strings.Contains(tmpl, "{seq}")
	if !hasRand && !hasSeq {
		return tmpl
	}
	n := g.seq.Add(1)
	if hasRand {
		tmpl = strings.ReplaceAll(tmpl, "{rand}", g.prefix+hex8(uint32(n)))
	}
	if hasSeq {
		tmpl = strings.ReplaceAll(tmpl, "{seq}", strconv.FormatUint(n, 10))
	}
	return tmpl
}

// hex8 formats v as exactly 8 lowercase hex digits.
func hex8(v uint32) string {
	const digits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}
