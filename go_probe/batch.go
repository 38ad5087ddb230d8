package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	maxCount         = 100000    // lookups in one /batch
	maxConcurrency   = 100000    // lookups in flight in one request
	maxMillis        = 3600000   // duration_ms and timeout_ms: one hour
	defaultTimeoutMS = 30000     // timeout_ms when omitted or 0
	maxBodyBytes     = 64 << 20  // 100000 names of 255 bytes fit with room to spare
	maxPooledBuffer  = 256 << 20 // response buffers larger than this are not kept for reuse
)

type batchRequest struct {
	Kind        string   `json:"kind"`
	Name        string   `json:"name"`
	Names       []string `json:"names"`
	Count       int      `json:"count"`
	Concurrency int      `json:"concurrency"`
	TimeoutMS   int      `json:"timeout_ms"`
	// Open loop: lookup i is meant to start at StartNS + i/Rate seconds (Unix ns; 0 means now). A lookup
	// that cannot start on time (every worker busy) starts late and keeps its intended time, so the
	// harness can measure latency from the intended start (no coordinated omission).
	Rate    float64 `json:"rate"`
	StartNS int64   `json:"start_ns"`
}

type batchResponse struct {
	Results []result `json:"results"`
}

type loopRequest struct {
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	Concurrency int    `json:"concurrency"`
	DurationMS  int    `json:"duration_ms"`
	TimeoutMS   int    `json:"timeout_ms"`
	Records     bool   `json:"records"`
}

type loopResponse struct {
	Lookups     int            `json:"lookups"`
	OK          int            `json:"ok"`
	Failures    map[string]int `json:"failures"` // only classes that occurred; {} when all were ok
	ElapsedNS   int64          `json:"elapsed_ns"`
	LookupsPerS float64        `json:"lookups_per_s"`
	LatencyMS   latencySummary `json:"latency_ms"` // over every lookup, failed ones included
	Results     []result       `json:"results,omitempty"`
}

type latencySummary struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// validateCommon checks the fields /batch and /loop share and returns the lookup function and the timeout.
func validateCommon(kind string, concurrency, timeoutMS int) (lookupFunc, time.Duration, error) {
	fn, ok := kinds[kind]
	if !ok {
		return nil, 0, fmt.Errorf("unknown kind %q (want host, ip, ip4, ip6, cname, srv, txt, mx, ns or ptr)", kind)
	}
	if concurrency < 1 || concurrency > maxConcurrency {
		return nil, 0, fmt.Errorf("concurrency %d out of range 1..%d", concurrency, maxConcurrency)
	}
	if timeoutMS == 0 {
		timeoutMS = defaultTimeoutMS
	}
	if timeoutMS < 1 || timeoutMS > maxMillis {
		return nil, 0, fmt.Errorf("timeout_ms %d out of range 1..%d", timeoutMS, maxMillis)
	}
	return fn, time.Duration(timeoutMS) * time.Millisecond, nil
}

func (req *batchRequest) validate() (lookupFunc, time.Duration, error) {
	fn, timeout, err := validateCommon(req.Kind, req.Concurrency, req.TimeoutMS)
	if err != nil {
		return nil, 0, err
	}
	if req.Rate < 0 || req.Rate > 1e7 {
		return nil, 0, fmt.Errorf("rate %g out of range 0..1e7 lookups per second", req.Rate)
	}
	if req.StartNS < 0 {
		return nil, 0, fmt.Errorf("start_ns %d is negative", req.StartNS)
	}
	if len(req.Names) > 0 {
		if len(req.Names) > maxCount {
			return nil, 0, fmt.Errorf("names has %d entries, more than %d", len(req.Names), maxCount)
		}
		for i, name := range req.Names {
			if name == "" {
				return nil, 0, fmt.Errorf("names[%d] is empty", i)
			}
		}
		return fn, timeout, nil
	}
	if req.Name == "" {
		return nil, 0, fmt.Errorf("name is empty and no names were given")
	}
	if req.Count < 1 || req.Count > maxCount {
		return nil, 0, fmt.Errorf("count %d out of range 1..%d", req.Count, maxCount)
	}
	return fn, timeout, nil
}

func (req *loopRequest) validate() (lookupFunc, time.Duration, error) {
	fn, timeout, err := validateCommon(req.Kind, req.Concurrency, req.TimeoutMS)
	if err != nil {
		return nil, 0, err
	}
	if req.Name == "" {
		return nil, 0, fmt.Errorf("name is empty")
	}
	if req.DurationMS < 1 || req.DurationMS > maxMillis {
		return nil, 0, fmt.Errorf("duration_ms %d out of range 1..%d", req.DurationMS, maxMillis)
	}
	return fn, timeout, nil
}

func (p *probe) handleBatch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "/batch takes POST, not "+r.Method)
		return
	}
	var req batchRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	fn, timeout, err := req.validate()
	if err != nil {
		writeError(w, http.StatusBadRequest, "/batch: "+err.Error())
		return
	}
	n, name := req.Count, func(int) string { return req.Name }
	if len(req.Names) > 0 {
		n, name = len(req.Names), func(i int) string { return req.Names[i] }
	}
	var sched *schedule
	if req.Rate > 0 {
		sched = &schedule{startNS: req.StartNS, rate: req.Rate}
		if sched.startNS == 0 {
			sched.startNS = time.Now().UnixNano()
		}
	}
	results := p.runBatch(r.Context(), fn, name, n, req.Concurrency, timeout, sched)
	writeJSON(w, http.StatusOK, batchResponse{Results: results})
}

// schedule is an open-loop batch's timetable: lookup i is meant to start at startNS + i/rate seconds.
type schedule struct {
	startNS int64
	rate    float64
}

func (s *schedule) intended(i int) int64 {
	return s.startNS + int64(float64(i)*1e9/s.rate)
}

// waitUntil sleeps until the wall-clock time ns, or until ctx ends (false then).
func waitUntil(ctx context.Context, ns int64) bool {
	d := time.Until(time.Unix(0, ns))
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// runBatch performs n lookups, at most concurrency at a time, the i-th of the name template name(i).
// With a schedule, lookup i waits for its intended start (open loop); a late one starts at once.
// If ctx ends (client gone, probe shutting down) no new lookup starts, and only finished ones are returned.
func (p *probe) runBatch(ctx context.Context, fn lookupFunc, name func(int) string, n, concurrency int, timeout time.Duration, sched *schedule) []result {
	results := make([]result, n)
	workers := concurrency
	if workers > n {
		workers = n
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				var intended int64
				if sched != nil {
					intended = sched.intended(i)
					if !waitUntil(ctx, intended) {
						return
					}
				}
				results[i] = lookupOnce(ctx, p.resolver, fn, p.names.expand(name(i)), timeout)
				results[i].IntendedNS = intended
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		done := results[:0]
		for _, res := range results {
			if res.Outcome != "" {
				done = append(done, res)
			}
		}
		results = done
	}
	return results
}

func (p *probe) handleLoop(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "/loop takes POST, not "+r.Method)
		return
	}
	var req loopRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	fn, timeout, err := req.validate()
	if err != nil {
		writeError(w, http.StatusBadRequest, "/loop: "+err.Error())
		return
	}
	duration := time.Duration(req.DurationMS) * time.Millisecond
	writeJSON(w, http.StatusOK, p.runLoop(r.Context(), fn, req.Name, req.Concurrency, duration, timeout, req.Records))
}

// runLoop is the bare-loop reference: concurrency goroutines, each looking up a fresh expansion of tmpl
// back to back until duration has passed (a lookup in flight then is allowed to finish). elapsed runs from
// the start until the last goroutine is done.
func (p *probe) runLoop(ctx context.Context, fn lookupFunc, tmpl string, concurrency int, duration, timeout time.Duration, records bool) loopResponse {
	type tally struct {
		latencies []int64
		outcomes  map[string]int
		results   []result
	}
	tallies := make([]tally, concurrency)
	start := time.Now()
	end := start.Add(duration)
	var wg sync.WaitGroup
	wg.Add(concurrency)
	for i := range tallies {
		go func(t *tally) {
			defer wg.Done()
			// Locals, not *t, while running: neighbouring tallies share cache lines.
			var latencies []int64
			var results []result
			outcomes := make(map[string]int)
			for ctx.Err() == nil && time.Now().Before(end) {
				res := lookupOnce(ctx, p.resolver, fn, p.names.expand(tmpl), timeout)
				latencies = append(latencies, res.LatencyNS)
				outcomes[res.Outcome]++
				if records {
					results = append(results, res)
				}
			}
			*t = tally{latencies, outcomes, results}
		}(&tallies[i])
	}
	wg.Wait()
	elapsed := time.Since(start)

	resp := loopResponse{Failures: make(map[string]int), ElapsedNS: int64(elapsed)}
	var latencies []int64
	for _, t := range tallies {
		latencies = append(latencies, t.latencies...)
		for outcome, n := range t.outcomes {
			if outcome == outcomeOK {
				resp.OK += n
			} else {
				resp.Failures[outcome] += n
			}
		}
		if records {
			resp.Results = append(resp.Results, t.results...)
		}
	}
	resp.Lookups = len(latencies)
	if elapsed > 0 {
		resp.LookupsPerS = float64(resp.Lookups) / elapsed.Seconds()
	}
	resp.LatencyMS = summarize(latencies)
	return resp
}

// summarize sorts ns in place and returns its percentiles in milliseconds (all zero when empty).
func summarize(ns []int64) latencySummary {
	slices.Sort(ns)
	ms := func(v int64) float64 { return float64(v) / 1e6 }
	return latencySummary{
		P50: ms(percentile(ns, 50)),
		P90: ms(percentile(ns, 90)),
		P99: ms(percentile(ns, 99)),
		Max: ms(percentile(ns, 100)),
	}
}

// percentile is the nearest-rank percentile of sorted values: the smallest value with at least p% of
// the values at or below it (no interpolation, so it is always a measured latency). 0 when empty.
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	// p*n first: exact for integral p, so 99% of 100 values is rank 99, not 99.00000000000001.
	rank := int(math.Ceil(p * float64(len(sorted)) / 100))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}
