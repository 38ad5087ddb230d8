package main

import (
	"encoding/json"
	"math"
	"net/netip"
	"testing"
	"time"
)

// The equivalence with the Python engine lives in tests/test_goserver_faults.py; these check the rule
// machinery on its own: the compiled JSON read, the gates' state and the delay distributions.

func ruleSetFrom(t *testing.T, text string) *ruleSet {
	t.Helper()
	var spec ruleSetJSON
	if err := json.Unmarshal([]byte(text), &spec); err != nil {
		t.Fatal(err)
	}
	rs, err := newRuleSet(spec)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

const always = `"gate": {"kind": "always"}`

func act(fields string) string {
	return `"act": {"drop": false, "delay": null, "rcode": null, "limit": "query", "mangle": null` + fields + `}`
}

func testQuery(t *testing.T, qtype uint16, labels ...string) *query {
	t.Helper()
	packet := append(header(1, 0x0100, 1, 0, 0, 0), wireName(labels...)...)
	packet = append(packet, byte(qtype>>8), byte(qtype), 0, 1)
	q, bad := parseQuery(packet, &zone{})
	if bad != nil {
		t.Fatal(bad)
	}
	return q
}

var client = netip.MustParseAddrPort("127.0.0.1:4000")

func TestMatchByNameTypeAndProtocol(t *testing.T) {
	rs := ruleSetFrom(t, `{"seed": 1, "rules": [
		{"fault": "servfail", "match": {"name_steps": ["w", null, ".", "t", "e", "s", "t", "."], "qtypes": [28], "proto": "udp",
		 "window": null, "probability": 1}, `+always+`, `+act(`, "rcode": 2`)+`}]}`)
	cases := []struct {
		q     *query
		proto string
		want  bool
	}{
		{testQuery(t, 28, "web", "test"), "udp", true},
		{testQuery(t, 28, "WEB", "Test"), "udp", true}, // matched on the lower-case name
		{testQuery(t, 1, "web", "test"), "udp", false},
		{testQuery(t, 28, "web", "test"), "tcp", false},
		{testQuery(t, 28, "api", "test"), "udp", false},
	}
	for i, c := range cases {
		if got := rs.faultFor(c.q, c.proto, client) != nil; got != c.want {
			t.Errorf("case %d: faulted %v, want %v", i, got, c.want)
		}
	}
}

func TestWindowsCountFromTheStart(t *testing.T) {
	rs := ruleSetFrom(t, `{"seed": 1, "rules": [
		{"fault": "outage", "match": {"name": null, "qtypes": null, "proto": null,
		 "window": {"start_s": 10, "end_s": 20, "period_s": 30}, "probability": 1}, `+always+`, `+act(`, "drop": true`)+`}]}`)
	q := testQuery(t, 1, "x", "test")
	for _, c := range []struct {
		ago  time.Duration
		want bool
	}{{0, false}, {15 * time.Second, true}, {25 * time.Second, false}, {45 * time.Second, true}} {
		rs.started = time.Now().Add(-c.ago)
		if got := rs.faultFor(q, "udp", client) != nil; got != c.want {
			t.Errorf("%v after the start: faulted %v, want %v", c.ago, got, c.want)
		}
	}
}

func TestRateLimitPassesTheRateThenFaults(t *testing.T) {
	rs := ruleSetFrom(t, `{"seed": 1, "rules": [
		{"fault": "ratelimit", "match": {"name": null, "qtypes": null, "proto": null, "window": null,
		 "probability": 1}, "gate": {"kind": "ratelimit", "rate": 5}, `+act(`, "rcode": 5`)+`}]}`)
	q := testQuery(t, 1, "x", "test")
	passed := 0
	for i := 0; i < 20; i++ {
		if rs.faultFor(q, "udp", client) == nil {
			passed++
		}
	}
	if passed < 5 || passed > 7 { // the bucket's depth, and what refills while the loop runs
		t.Errorf("%d of 20 passed a rate of 5/s", passed)
	}
}

func TestRaceFaultsTheSecondPacketFromOnePort(t *testing.T) {
	rs := ruleSetFrom(t, `{"seed": 1, "rules": [
		{"fault": "conntrack_race", "match": {"name": null, "qtypes": null, "proto": null, "window": null,
		 "probability": 1}, "gate": {"kind": "race", "window_s": 10}, `+act(`, "drop": true`)+`}]}`)
	q := testQuery(t, 1, "x", "test")
	other := netip.MustParseAddrPort("127.0.0.1:4001")
	got := []bool{
		rs.faultFor(q, "udp", client) != nil,
		rs.faultFor(q, "udp", client) != nil,
		rs.faultFor(q, "udp", other) != nil,
		rs.faultFor(q, "tcp", other) != nil,
	}
	if want := []bool{false, true, false, false}; !equal(got, want) {
		t.Errorf("faulted %v, want %v", got, want)
	}
}

func TestPairGatePairsTwoQueriesForOneNameFromOneAddress(t *testing.T) {
	rs := ruleSetFrom(t, `{"seed": 1, "rules": [
		{"fault": "swap_replies", "match": {"name": null, "qtypes": null, "proto": null, "window": null,
		 "probability": 1}, "gate": {"kind": "pair", "window_s": 10}, `+act(`, "swap": true`)+`}]}`)
	a, aaaa := testQuery(t, 1, "x", "test"), testQuery(t, 28, "X", "Test")
	other := netip.MustParseAddrPort("127.0.0.1:4001")
	first := rs.faultFor(a, "udp", client)
	if first == nil || first.swap == nil {
		t.Fatal("the first query got no pair")
	}
	if again := rs.faultFor(a, "udp", client); again != nil {
		t.Error("a retransmission (same port and ID) was paired")
	}
	second := rs.faultFor(aaaa, "udp", other)
	if second == nil || second.swap != first.swap {
		t.Fatal("the second query (another port, the name in another case) did not join the first's pair")
	}
	third := rs.faultFor(a, "udp", other)
	if third == nil || third.swap == first.swap {
		t.Error("a third query joined a full pair")
	}
	if rs.faultFor(testQuery(t, 1, "y", "test"), "udp", netip.MustParseAddrPort("127.0.0.2:4001")).swap == third.swap {
		t.Error("another address and name joined the pair")
	}
	if rs.faultFor(a, "tcp", client) != nil {
		t.Error("a TCP query was paired")
	}
	rs.rules[0].spec.Gate.WindowS = 0 // every waiting query is now too old: a new pair each time
	if p, q := rs.faultFor(aaaa, "udp", client), rs.faultFor(aaaa, "udp", other); p.swap == q.swap {
		t.Error("queries further apart than the window were paired")
	}
}

type sent struct {
	reply []byte
	to    netip.AddrPort
}

func TestSwapPairSendsEachReplyUnderTheOthersIDToTheOthersPort(t *testing.T) {
	var out []sent
	send := func(reply []byte, to netip.AddrPort) { out = append(out, sent{reply, to}) }
	one, two := netip.MustParseAddrPort("127.0.0.1:1111"), netip.MustParseAddrPort("127.0.0.1:2222")
	p := &swapPair{window: time.Second}
	if !p.arrive([]byte{0, 1, 'A'}, one, send) {
		t.Fatal("the first reply was not held")
	}
	if len(out) != 0 {
		t.Fatal("the held reply went out")
	}
	if p.arrive([]byte{0, 2, 'B'}, two, send) {
		t.Fatal("the second reply was held")
	}
	p.release() // too late: nothing more goes out
	want := []sent{{[]byte{0, 1, 'B'}, one}, {[]byte{0, 2, 'A'}, two}}
	if len(out) != 2 || string(out[0].reply) != string(want[0].reply) || out[0].to != one ||
		string(out[1].reply) != string(want[1].reply) || out[1].to != two {
		t.Errorf("sent %v, want %v", out, want)
	}

	out = nil
	lone := &swapPair{window: time.Second}
	lone.arrive([]byte{0, 3, 'C'}, one, send)
	lone.release()
	lone.arrive([]byte{0, 4, 'D'}, two, send) // its partner was released: it goes out as it is
	if len(out) != 2 || string(out[0].reply) != "\x00\x03C" || string(out[1].reply) != "\x00\x04D" {
		t.Errorf("a released pair sent %v", out)
	}
}

func equal(a, b []bool) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestDelayDistributionsHaveTheirMeans(t *testing.T) {
	rs := ruleSetFrom(t, `{"seed": 7, "rules": []}`)
	for _, c := range []struct {
		dist         string
		mean, spread float64
		want         float64
	}{
		{"fixed", 0.2, 0, 0.2},
		{"uniform", 0.2, 0.1, 0.2},
		{"normal", 0.2, 0.05, 0.2},
		{"exponential", 0.1, 0.05, 0.15},
	} {
		sum := 0.0
		const n = 20000
		for i := 0; i < n; i++ {
			v := rs.drawDelay(c.dist, c.mean, c.spread)
			if v < 0 {
				t.Fatalf("%s: negative delay %v", c.dist, v)
			}
			sum += v
		}
		if got := sum / n; math.Abs(got-c.want) > 0.01 {
			t.Errorf("%s: mean %.4f, want %.4f", c.dist, got, c.want)
		}
	}
}

func TestBadCompiledRulesAreRefused(t *testing.T) {
	for _, text := range []string{
		`{"seed": 1, "rules": [{"fault": "x", "match": {"probability": 1}, "gate": {"kind": "bogus"}, ` + act("") + `}]}`,
		`{"seed": 1, "rules": [{"fault": "x", "match": {"probability": 1}, ` + always + `, ` + act(`, "mangle": "swap"`) + `}]}`,
	} {
		var spec ruleSetJSON
		if err := json.Unmarshal([]byte(text), &spec); err != nil {
			t.Fatal(err)
		}
		if _, err := newRuleSet(spec); err == nil {
			t.Errorf("accepted %s", text)
		}
	}
}

func TestGlobSteps(t *testing.T) {
	steps := func(parts ...any) []step {
		out := []step{}
		for _, p := range parts {
			var st step
			if p == nil {
				st.star = true
			} else {
				for _, c := range []byte(p.(string)) {
					st.set[c>>6] |= 1 << (c & 63)
				}
			}
			out = append(out, st)
		}
		return out
	}
	cases := []struct {
		steps []step
		text  string
		want  bool
	}{
		{steps(nil, "a", nil, "b"), "xaxxb", true},
		{steps(nil, "a", nil, "b"), "ab", true},
		{steps(nil, "a", nil, "b"), "abx", false},
		{steps("h", nil, "0", "0", ".", nil), "h1200.api.", true},
		{steps("h", nil, "0", "0", ".", nil), "h12001.api.", false},
		{steps("ab", "c"), "bc", true},
		{steps("ab", "c"), "cc", false},
		{steps(nil), "", true},
		{steps("a"), "", false},
		{steps(""), "a", false},
		{steps(nil, nil, "x"), "aax", true},
	}
	for i, c := range cases {
		if got := globMatch(c.steps, []byte(c.text)); got != c.want {
			t.Errorf("case %d (%q): %v, want %v", i, c.text, got, c.want)
		}
	}
}
