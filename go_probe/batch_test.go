package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testProbe is a probe whose lookups go to ns; with ns nil, to nowhere: every query fails to dial.
// (Never a nil resolver: that would be net.DefaultResolver and the machine's own nameserver.)
func testProbe(ns *testNameserver) *probe {
	p := &probe{names: newNameGen(), info: newInfo("test", time.Now())}
	if ns != nil {
		p.resolver = ns.resolver()
	} else {
		p.resolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("this test sends no query")
		}}
	}
	return p
}

// call sends one request through the probe's handler and returns the status and the raw body.
func call(p *probe, method, path, body string) (int, []byte) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func TestBatchEndToEnd(t *testing.T) {
	ns := startNameserver(t, 20*time.Millisecond)
	p := testProbe(ns)
	status, body := call(p, "POST", "/batch",
		`{"kind": "host", "name": "{rand}.ok.test.", "count": 40, "concurrency": 4, "timeout_ms": 5000}`)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var resp batchResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 40 {
		t.Fatalf("%d results, want 40", len(resp.Results))
	}
	names := make(map[string]bool)
	for _, r := range resp.Results {
		if r.Outcome != outcomeOK || r.Answers != 2 || r.Error != "" {
			t.Errorf("result %+v", r)
		}
		if r.LatencyNS < int64(20*time.Millisecond) || r.StartNS <= 0 {
			t.Errorf("timing %+v", r)
		}
		names[r.Name] = true
	}
	if len(names) != 40 {
		t.Errorf("%d distinct names, want 40", len(names))
	}
	// At most `concurrency` lookups in flight, and more than one: the handler does not serialise.
	if _, maxPending := ns.stats(); maxPending > 4 || maxPending < 2 {
		t.Errorf("the server held up to %d names at once, want 2..4", maxPending)
	}
	if bytes.Count(body, []byte("\n")) != 1 {
		t.Errorf("response is not one line")
	}
}

func TestBatchExplicitNames(t *testing.T) {
	p := testProbe(startNameserver(t, 0))
	status, body := call(p, "POST", "/batch",
		`{"kind": "ip4", "names": ["a.ok.test.", "b.nx.test.", "c.sf.test.", "d.rf.test.", "{seq}.ok.test."], "concurrency": 2, "timeout_ms": 2000}`)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var resp batchResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	got := make(map[string]string)
	for _, r := range resp.Results {
		got[r.Name] = r.Outcome
	}
	want := map[string]string{
		"a.ok.test.": outcomeOK, "b.nx.test.": outcomeNotFound, "c.sf.test.": outcomeTemporary,
		"d.rf.test.": outcomeRefused, "1.ok.test.": outcomeOK,
	}
	for name, outcome := range want {
		if got[name] != outcome {
			t.Errorf("%s: outcome %q, want %q (all: %v)", name, got[name], outcome, got)
		}
	}
}

func TestLoopEndToEnd(t *testing.T) {
	p := testProbe(startNameserver(t, 2*time.Millisecond))
	status, body := call(p, "POST", "/loop",
		`{"kind": "host", "name": "{rand}.ok.test.", "concurrency": 3, "duration_ms": 200, "timeout_ms": 2000, "records": true}`)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var resp loopResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, n := range resp.Failures {
		failed += n
	}
	if resp.Lookups < 3 || resp.Lookups != resp.OK+failed || resp.OK != resp.Lookups {
		t.Errorf("lookups %d, ok %d, failures %v", resp.Lookups, resp.OK, resp.Failures)
	}
	if len(resp.Results) != resp.Lookups {
		t.Errorf("%d records for %d lookups", len(resp.Results), resp.Lookups)
	}
	if resp.ElapsedNS < int64(200*time.Millisecond) || resp.LookupsPerS <= 0 {
		t.Errorf("elapsed %d ns, %g lookups/s", resp.ElapsedNS, resp.LookupsPerS)
	}
	l := resp.LatencyMS
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("latency %+v", l)
	}
	if !strings.Contains(string(body), `"failures":{}`) {
		t.Errorf("failures is not an empty object when all were ok: %s", body[:min(len(body), 200)])
	}
}

func TestLoopCountsFailuresAndOmitsRecords(t *testing.T) {
	p := testProbe(startNameserver(t, 0))
	status, body := call(p, "POST", "/loop",
		`{"kind": "host", "name": "{rand}.sf.test.", "concurrency": 2, "duration_ms": 50, "timeout_ms": 1000}`)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var resp map[string]any
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if _, ok := resp["results"]; ok {
		t.Error("results present without records")
	}
	failures := resp["failures"].(map[string]any)
	if resp["ok"].(float64) != 0 || failures[outcomeTemporary].(float64) != resp["lookups"].(float64) {
		t.Errorf("SERVFAIL loop: %s", body)
	}
}

func TestBadRequests(t *testing.T) {
	p := testProbe(nil) // none of these may reach a resolver
	cases := []struct {
		method, path, body string
		status             int
		errorHas           string
	}{
		{"POST", "/batch", `{"kind": "aaaa", "name": "x", "count": 1, "concurrency": 1}`, 400, "unknown kind"},
		{"POST", "/batch", `{"name": "x", "count": 1, "concurrency": 1}`, 400, "unknown kind"},
		{"POST", "/batch", `{"kind": "host", "name": "x", "count": 0, "concurrency": 1}`, 400, "count 0"},
		{"POST", "/batch", `{"kind": "host", "name": "x", "count": 100001, "concurrency": 1}`, 400, "count 100001"},
		{"POST", "/batch", `{"kind": "host", "name": "x", "count": 1, "concurrency": 0}`, 400, "concurrency 0"},
		{"POST", "/batch", `{"kind": "host", "name": "x", "count": 1, "concurrency": 1, "timeout_ms": -1}`, 400, "timeout_ms -1"},
		{"POST", "/batch", `{"kind": "host", "count": 1, "concurrency": 1}`, 400, "name is empty"},
		{"POST", "/batch", `{"kind": "host", "names": ["a", ""], "concurrency": 1}`, 400, "names[1] is empty"},
		{"POST", "/batch", `{"kind": "host", "name": "x", "count": 1, "concurrency": 1, "timeout": 5}`, 400, "unknown field"},
		{"POST", "/batch", `{"kind": "host", "name": "x", "count": 1, "concurrency": 1} {}`, 400, "more data"},
		{"POST", "/batch", `{"kind": "host",`, 400, "bad JSON"},
		{"POST", "/batch", ``, 400, "bad JSON"},
		{"POST", "/batch", `{"kind": "host", "name": "x", "count": "1", "concurrency": 1}`, 400, "bad JSON"},
		{"GET", "/batch", ``, 405, "POST"},
		{"POST", "/loop", `{"kind": "host", "name": "x", "concurrency": 1, "duration_ms": 0}`, 400, "duration_ms 0"},
		{"POST", "/loop", `{"kind": "nope", "name": "x", "concurrency": 1, "duration_ms": 10}`, 400, "unknown kind"},
		{"POST", "/loop", `{"kind": "host", "name": "x", "concurrency": 0, "duration_ms": 10}`, 400, "concurrency 0"},
		{"POST", "/loop", `[]`, 400, "bad JSON"},
		{"POST", "/info", ``, 405, "GET"},
		{"GET", "/nope", ``, 404, "no such endpoint"},
	}
	for _, c := range cases {
		status, body := call(p, c.method, c.path, c.body)
		var resp map[string]string
		err := json.Unmarshal(body, &resp)
		if status != c.status || err != nil || !strings.Contains(resp["error"], c.errorHas) || len(resp) != 1 {
			t.Errorf("%s %s %s: %d %s, want %d and an error with %q", c.method, c.path, c.body, status, body, c.status, c.errorHas)
		}
		if bytes.Count(body, []byte("\n")) != 1 || !bytes.HasSuffix(body, []byte("\n")) {
			t.Errorf("%s %s %s: error is not one line: %q", c.method, c.path, c.body, body)
		}
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1)
	}
	cases := []struct {
		values []int64
		p      float64
		want   int64
	}{
		{nil, 50, 0},
		{[]int64{7}, 50, 7},
		{[]int64{7}, 99, 7},
		{[]int64{1, 2}, 50, 1},
		{[]int64{1, 2, 3, 4}, 50, 2},
		{[]int64{1, 2, 3, 4, 5}, 50, 3},
		{hundred, 50, 50},
		{hundred, 90, 90},
		{hundred, 99, 99},
		{hundred, 100, 100},
		{hundred, 0, 1},
		{hundred[:10], 90, 9},
		{hundred[:10], 99, 10},
	}
	for _, c := range cases {
		if got := percentile(c.values, c.p); got != c.want {
			t.Errorf("percentile(%d values, %g) = %d, want %d", len(c.values), c.p, got, c.want)
		}
	}
}

func TestSummarizeSortsAndConvertsToMilliseconds(t *testing.T) {
	got := summarize([]int64{4e6, 1e6, 3e6, 2e6})
	want := latencySummary{P50: 2, P90: 4, P99: 4, Max: 4}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if (summarize(nil) != latencySummary{}) {
		t.Error("summarize(nil) is not all zero")
	}
}

func TestBatchOpenLoopKeepsTheIntendedStart(t *testing.T) {
	// 20 lookups at 200/s are meant to start 5 ms apart; each takes 30 ms and only 2 run at once, so the
	// probe falls behind: later lookups start late, but keep their intended start.
	p := testProbe(startNameserver(t, 30*time.Millisecond))
	start := time.Now().Add(20 * time.Millisecond).UnixNano()
	body := fmt.Sprintf(`{"kind": "host", "name": "{rand}.ok.test.", "count": 20, "concurrency": 2, "rate": 200, "start_ns": %d}`, start)
	status, raw := call(p, "POST", "/batch", body)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, raw)
	}
	var resp batchResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 20 {
		t.Fatalf("%d results, want 20", len(resp.Results))
	}
	for i, r := range resp.Results {
		want := start + int64(i)*int64(5*time.Millisecond)
		if r.IntendedNS != want {
			t.Errorf("lookup %d intended %d, want %d", i, r.IntendedNS, want)
		}
		if r.StartNS < r.IntendedNS {
			t.Errorf("lookup %d started %d ns before its intended start", i, r.IntendedNS-r.StartNS)
		}
	}
	last := resp.Results[19]
	if lag := last.StartNS - last.IntendedNS; lag < int64(100*time.Millisecond) {
		t.Errorf("the last lookup started only %d ns late; 2 workers at 30 ms cannot keep 200/s", lag)
	}
	if !strings.Contains(string(raw), `"intended_ns"`) {
		t.Error("intended_ns missing from the open-loop response")
	}
}

func TestBatchClosedLoopOmitsIntended(t *testing.T) {
	p := testProbe(startNameserver(t, 0))
	_, raw := call(p, "POST", "/batch", `{"kind": "host", "name": "{rand}.ok.test.", "count": 3, "concurrency": 3}`)
	if strings.Contains(string(raw), "intended_ns") {
		t.Errorf("closed-loop response carries intended_ns: %s", raw)
	}
}
