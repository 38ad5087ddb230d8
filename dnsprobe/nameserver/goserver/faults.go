package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"net/netip"
	"sync"
	"time"
)

// Fault rules, as dnsprobe/nameserver/faults.py compiles them (its docstring describes the JSON). Python
// decides what each rule means; this file only matches (name expression, query types, protocol, time
// window, probability), runs the stateful gates (rate limit, conntrack race, flow pin, pair) and acts
// (drop, delay, rcode, size limit, mangle, swap), the way the Python engine's RulePolicy and
// Nameserver._apply do.

const (
	udpMax     = 65507   // the largest payload of one IPv4 UDP datagram (an oversized answer goes whole)
	raceMemory = 65536   // client ports a race gate remembers before it clears its table
	flowMemory = 1 << 20 // client ports a flow_pin gate remembers from before its time (later: not pinned)
	pairMemory = 65536   // (client address, name) keys a pair gate remembers before it clears its table
)

type ruleJSON struct {
	Fault string `json:"fault"`
	Match struct {
		Steps  []*string `json:"name_steps"` // nil: any name; a nil step: `*`
		QTypes []uint16  `json:"qtypes"`
		Proto  *string   `json:"proto"`
		EDNS   *string   `json:"edns"` // "present" | "absent"; nil: any
		Window *struct {
			Start  float64  `json:"start_s"`
			End    *float64 `json:"end_s"`
			Period *float64 `json:"period_s"`
		} `json:"window"`
		Probability float64 `json:"probability"`
	} `json:"match"`
	Gate struct {
		Kind    string  `json:"kind"`
		Rate    float64 `json:"rate"`
		WindowS float64 `json:"window_s"`
		Before  float64 `json:"before_s"`
		Until   float64 `json:"until_s"`
	} `json:"gate"`
	Act struct {
		Drop  bool `json:"drop"`
		Delay *struct {
			Dist   string  `json:"dist"`
			Mean   float64 `json:"mean_s"`
			Spread float64 `json:"spread_s"`
		} `json:"delay"`
		Rcode      *uint16 `json:"rcode"`
		Limit      string  `json:"limit"`
		Mangle     *string `json:"mangle"`
		FlagsClear uint16  `json:"flags_clear"`
		NoOpt      bool    `json:"no_opt"`
		Swap       bool    `json:"swap"` // with gate pair: the replies cross-wired (swapPair)
	} `json:"act"`
}

// ruleSetJSON is one server's rules and the seed of its random numbers.
type ruleSetJSON struct {
	Seed  uint64     `json:"seed"`
	Rules []ruleJSON `json:"rules"`
}

// action is what a rule does to a query it faults; delay is drawn per query.
type action struct {
	fault      string
	drop       bool
	rcode      int // -1: the answer's own
	limit      string
	mangle     string
	flagsClear uint16 // with rcode: header bits cleared
	noOpt      bool   // with rcode: no OPT record
	delay      time.Duration
	swap       *swapPair // the pair this query's normal reply is swapped in (gate pair, act.swap)
}

type rule struct {
	spec     ruleJSON
	name     []step // nil: any name
	qtypes   map[uint16]bool
	proto    string
	edns     int // 0: any; 1: only with an OPT record; -1: only without
	act      action
	tokens   float64
	refill   time.Time // zero: never refilled
	lastSeen map[netip.AddrPort]time.Time
	flows    map[netip.AddrPort]struct{} // flow_pin: client ports first seen before the gate's time
	pending  map[pairKey]pendingPair     // pair: the query waiting for its partner, per address and name
}

type pairKey struct {
	addr netip.Addr
	name string // lower case, wire form
}

type pendingPair struct {
	pair  *swapPair
	since time.Time
	port  uint16
	id    uint16
}

// ruleSet is one server's rules, tried in order. One lock covers the random numbers and the gates.
type ruleSet struct {
	rules         []*rule
	needsNameText bool
	mu            sync.Mutex
	rng           *rand.Rand
	started       time.Time
}

func newRuleSet(spec ruleSetJSON) (*ruleSet, error) {
	rs := &ruleSet{rng: rand.New(rand.NewSource(int64(spec.Seed))), started: time.Now()}
	for i, r := range spec.Rules {
		compiled := &rule{
			spec: r, tokens: r.Gate.Rate, lastSeen: map[netip.AddrPort]time.Time{},
			flows: map[netip.AddrPort]struct{}{}, pending: map[pairKey]pendingPair{},
		}
		if r.Match.Steps != nil {
			compiled.name = make([]step, len(r.Match.Steps))
			for j, chars := range r.Match.Steps {
				if chars == nil {
					compiled.name[j].star = true
					continue
				}
				for k := 0; k < len(*chars); k++ {
					c := (*chars)[k]
					compiled.name[j].set[c>>6] |= 1 << (c & 63)
				}
			}
			rs.needsNameText = true
		}
		if r.Match.QTypes != nil {
			compiled.qtypes = map[uint16]bool{}
			for _, t := range r.Match.QTypes {
				compiled.qtypes[t] = true
			}
		}
		if r.Match.Proto != nil {
			compiled.proto = *r.Match.Proto
		}
		if r.Match.EDNS != nil {
			switch *r.Match.EDNS {
			case "present":
				compiled.edns = 1
			case "absent":
				compiled.edns = -1
			default:
				return nil, fmt.Errorf("rule %d (%s): edns %q unknown", i+1, r.Fault, *r.Match.EDNS)
			}
		}
		switch r.Gate.Kind {
		case "always", "ratelimit", "race", "flow_pin", "pair":
		default:
			return nil, fmt.Errorf("rule %d (%s): gate %q unknown", i+1, r.Fault, r.Gate.Kind)
		}
		switch r.Act.Limit {
		case "query", "zero", "max":
		default:
			return nil, fmt.Errorf("rule %d (%s): limit %q unknown", i+1, r.Fault, r.Act.Limit)
		}
		if r.Act.Delay != nil {
			switch r.Act.Delay.Dist {
			case "fixed", "uniform", "normal", "exponential":
			default:
				return nil, fmt.Errorf("rule %d (%s): delay distribution %q unknown", i+1, r.Fault, r.Act.Delay.Dist)
			}
		}
		compiled.act = action{
			fault: r.Fault, drop: r.Act.Drop, rcode: -1, limit: r.Act.Limit,
			flagsClear: r.Act.FlagsClear, noOpt: r.Act.NoOpt,
		}
		if r.Act.Rcode != nil {
			compiled.act.rcode = int(*r.Act.Rcode)
		}
		if r.Act.Mangle != nil {
			switch *r.Act.Mangle {
			case "garbage", "wrong_id", "wrong_question", "tc_bit", "uncompressed":
				compiled.act.mangle = *r.Act.Mangle
			default:
				return nil, fmt.Errorf("rule %d (%s): mangle %q unknown", i+1, r.Fault, *r.Act.Mangle)
			}
		}
		rs.rules = append(rs.rules, compiled)
	}
	return rs, nil
}

// restartClock counts time windows from now (when every socket serves).
func (rs *ruleSet) restartClock() {
	rs.mu.Lock()
	rs.started = time.Now()
	rs.mu.Unlock()
}

// faultFor is RulePolicy.fault_for: the action for this query, nil to answer it normally.
func (rs *ruleSet) faultFor(q *query, proto string, client netip.AddrPort) *action {
	var text []byte
	if rs.needsNameText {
		var lower [maxNameLen]byte
		var buf [4 * maxNameLen]byte // \DDD escapes at most quadruple a byte
		text = appendNameText(buf[:0], lowerName(lower[:0], q.qname))
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	now := time.Now()
	elapsed := now.Sub(rs.started).Seconds()
	for _, r := range rs.rules {
		if !rs.matches(r, q, proto, elapsed, text) {
			continue
		}
		if act := rs.decide(r, q, proto, client, now, elapsed); act != nil {
			return act
		}
	}
	return nil
}

func (rs *ruleSet) matches(r *rule, q *query, proto string, elapsed float64, text []byte) bool {
	m := &r.spec.Match
	if r.proto != "" && proto != r.proto {
		return false
	}
	if r.qtypes != nil && !r.qtypes[q.qtype] {
		return false
	}
	if r.edns != 0 && (q.edns >= 0) != (r.edns > 0) {
		return false
	}
	if w := m.Window; w != nil {
		at := elapsed
		if w.Period != nil {
			at = math.Mod(elapsed, *w.Period)
		}
		if at < w.Start || (w.End != nil && at >= *w.End) {
			return false
		}
	}
	if r.name != nil && !globMatch(r.name, text) {
		return false
	}
	return m.Probability >= 1.0 || rs.rng.Float64() < m.Probability
}

func (rs *ruleSet) decide(r *rule, q *query, proto string, client netip.AddrPort, now time.Time, elapsed float64) *action {
	switch r.spec.Gate.Kind {
	case "pair":
		pair := r.paired(q, proto, client, now)
		if pair == nil {
			return nil
		}
		act := r.act
		if r.spec.Act.Swap {
			act.swap = pair
		}
		return &act
	case "ratelimit":
		if r.withinRate(now) {
			return nil
		}
	case "race":
		if !r.raced(proto, client, now) {
			return nil
		}
	case "flow_pin":
		if !r.pinned(proto, client, elapsed) {
			return nil
		}
	}
	if d := r.spec.Act.Delay; d != nil {
		act := r.act
		act.delay = time.Duration(rs.drawDelay(d.Dist, d.Mean, d.Spread) * float64(time.Second))
		return &act
	}
	return &r.act
}

func (rs *ruleSet) drawDelay(dist string, mean, spread float64) float64 {
	var value float64
	switch dist {
	case "uniform":
		value = mean - spread + 2*spread*rs.rng.Float64()
	case "normal":
		value = mean + spread*rs.rng.NormFloat64()
	case "exponential":
		value = mean*rs.rng.ExpFloat64() + spread
	default:
		value = mean
	}
	return max(0, value)
}

// withinRate: a token bucket as deep as the rate, full at start.
func (r *rule) withinRate(now time.Time) bool {
	rate := r.spec.Gate.Rate
	if !r.refill.IsZero() {
		r.tokens = min(rate, r.tokens+now.Sub(r.refill).Seconds()*rate)
	}
	r.refill = now
	if r.tokens >= 1 {
		r.tokens--
		return true
	}
	return false
}

// pinned: a UDP packet from a client port first seen before the gate's time, while its entry is stale.
func (r *rule) pinned(proto string, client netip.AddrPort, elapsed float64) bool {
	if proto != "udp" {
		return false // a new TCP connection is a new flow
	}
	key := netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	if elapsed < r.spec.Gate.Before {
		if len(r.flows) < flowMemory {
			r.flows[key] = struct{}{}
		}
		return false
	}
	_, seen := r.flows[key]
	return elapsed < r.spec.Gate.Until && seen
}

// paired is the pair gate: the pair a UDP query belongs to, its partner's (same client address and
// lower-case name within the window, another port or ID) or a new one it starts; nil for TCP and for a
// retransmission of the waiting query.
func (r *rule) paired(q *query, proto string, client netip.AddrPort, now time.Time) *swapPair {
	if proto != "udp" {
		return nil
	}
	var lower [maxNameLen]byte
	key := pairKey{client.Addr().Unmap(), string(lowerName(lower[:0], q.qname))}
	window := time.Duration(r.spec.Gate.WindowS * float64(time.Second))
	if waiting, ok := r.pending[key]; ok && now.Sub(waiting.since) < window {
		if waiting.port == client.Port() && waiting.id == q.id {
			return nil
		}
		delete(r.pending, key)
		return waiting.pair
	}
	if len(r.pending) >= pairMemory {
		clear(r.pending)
	}
	pair := &swapPair{window: window}
	r.pending[key] = pendingPair{pair, now, client.Port(), q.id}
	return pair
}

// swapPair is server.SwapPair: two UDP replies sent cross-wired. Whichever is ready first is held up
// to the window; when the other is ready, each reply goes out with the other query's ID to the other
// query's client address and port. A held reply whose partner does not come goes out as it is (release).
type swapPair struct {
	window time.Duration
	mu     sync.Mutex
	state  int // pairEmpty, pairHeld, pairDone
	reply  []byte
	to     netip.AddrPort
	send   func([]byte, netip.AddrPort)
}

const (
	pairEmpty = iota
	pairHeld
	pairDone
)

// arrive hands over one of the two replies: true when it is held (call release after the window).
func (p *swapPair) arrive(reply []byte, to netip.AddrPort, send func([]byte, netip.AddrPort)) bool {
	p.mu.Lock()
	switch p.state {
	case pairEmpty:
		p.reply, p.to, p.send, p.state = reply, to, send, pairHeld
		p.mu.Unlock()
		return true
	case pairHeld:
		first, firstTo, firstSend := p.reply, p.to, p.send
		p.reply, p.send, p.state = nil, nil, pairDone
		p.mu.Unlock()
		firstSend(withID(reply, first), firstTo) // this answer, under the first query's ID
		send(withID(first, reply), to)           // the first answer, under this query's ID
		return false
	}
	p.mu.Unlock()
	send(reply, to)
	return false
}

// release sends a reply still held when the window is over, as it is.
func (p *swapPair) release() {
	p.mu.Lock()
	if p.state != pairHeld {
		p.mu.Unlock()
		return
	}
	reply, to, send := p.reply, p.to, p.send
	p.reply, p.send, p.state = nil, nil, pairDone
	p.mu.Unlock()
	send(reply, to)
}

// withID is body with the first two bytes (the ID) of idFrom.
func withID(body, idFrom []byte) []byte {
	out := append(make([]byte, 0, len(body)), idFrom[:2]...)
	return append(out, body[2:]...)
}

// raced: a second UDP packet from one client port within the window (the one that lost the race).
func (r *rule) raced(proto string, client netip.AddrPort, now time.Time) bool {
	if proto != "udp" {
		return false // a TCP connection is one conntrack entry from its first packet
	}
	key := netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	if last, ok := r.lastSeen[key]; ok && now.Sub(last).Seconds() < r.spec.Gate.WindowS {
		return true
	}
	if len(r.lastSeen) >= raceMemory {
		clear(r.lastSeen)
	}
	r.lastSeen[key] = now
	return false
}

// apply is Nameserver._apply: the reply under a fault (nil: none) and its rcode.
func (z *zone) apply(act *action, q *query, proto string) ([]byte, uint16) {
	if act.drop {
		return nil, 0
	}
	if act.rcode >= 0 {
		return z.errorReplyWith(q, uint16(act.rcode), act.flagsClear, act.noOpt), uint16(act.rcode)
	}
	var reply []byte
	var rcode uint16
	switch {
	case act.limit == "zero":
		reply, rcode = z.respond(q, 0)
	case proto == "tcp":
		reply, rcode = z.respond(q, tcpLimit)
	case act.limit == "max":
		reply, rcode = z.respond(q, udpMax)
	default:
		reply, rcode = z.respond(q, q.udpLimit())
	}
	if act.mangle != "" {
		reply = mangled(act.mangle, reply, q)
	}
	return reply, rcode
}

// uncompressed is server._uncompressed: every record owner that points at the question (0xC00C) written
// out in full, as a server without name compression sends it.
func uncompressed(reply []byte, q *query) []byte {
	qname := q.question[:len(q.question)-4]
	pos := 12
	if binary.BigEndian.Uint16(reply[4:]) > 0 {
		pos += len(q.question)
	}
	records := int(binary.BigEndian.Uint16(reply[6:])) + int(binary.BigEndian.Uint16(reply[8:])) +
		int(binary.BigEndian.Uint16(reply[10:]))
	out := append(make([]byte, 0, len(reply)+records*len(qname)), reply[:pos]...)
	for i := 0; i < records; i++ {
		if reply[pos] == 0xC0 && reply[pos+1] == 0x0C {
			out = append(out, qname...)
			pos += 2
		} else {
			start := pos
			for reply[pos] != 0 && reply[pos] < 0xC0 {
				pos += 1 + int(reply[pos])
			}
			if reply[pos] >= 0xC0 {
				pos += 2
			} else {
				pos++
			}
			out = append(out, reply[start:pos]...)
		}
		rdlength := int(binary.BigEndian.Uint16(reply[pos+8:]))
		out = append(out, reply[pos:pos+10+rdlength]...)
		pos += 10 + rdlength
	}
	return append(out, reply[pos:]...)
}

var garbageRecord = []byte{0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01, 0xFF, 0xFF} // cut inside its TTL

// mangled is server._mangled: a reply a client must reject, or (tc_bit) the whole answer with TC set.
func mangled(how string, reply []byte, q *query) []byte {
	switch how {
	case "tc_bit":
		reply[2] |= flagTC >> 8
		return reply
	case "wrong_id":
		binary.BigEndian.PutUint16(reply, q.id+0x5555)
		return reply
	case "uncompressed":
		return uncompressed(reply, q)
	case "wrong_question":
		// Another name in front of the question: the answer owners point at it (0xC00C).
		out := append(make([]byte, 0, len(reply)+6), reply[:12]...)
		out = append(out, 5, 'w', 'r', 'o', 'n', 'g')
		return append(out, reply[12:]...)
	}
	// garbage: the header promises three answers, the question is right, then the first record is cut
	out := append(make([]byte, 0, 12+len(q.question)+len(garbageRecord)), reply[:4]...)
	out = append(out, 0, 1, 0, 3, 0, 0, 0, 0)
	out = append(out, q.question...)
	return append(out, garbageRecord...)
}

// lowerName appends qname with ASCII letters lower-cased (the lookup key).
func lowerName(b []byte, qname []byte) []byte {
	for _, c := range qname {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// step is one position of a compiled name glob: `*` (any run of characters) or the bytes it may hold.
type step struct {
	star bool
	set  [4]uint64
}

// globMatch: does text match the steps whole? One position per step, `*` any run; backtracking only to
// the last `*`, which is enough when every other step takes exactly one character.
func globMatch(steps []step, text []byte) bool {
	si, ti := 0, 0
	starStep, starText := -1, 0
	for ti < len(text) {
		if si < len(steps) {
			st := &steps[si]
			if st.star {
				starStep, starText = si, ti
				si++
				continue
			}
			if c := text[ti]; st.set[c>>6]&(1<<(c&63)) != 0 {
				si++
				ti++
				continue
			}
		}
		if starStep < 0 {
			return false
		}
		starText++
		si, ti = starStep+1, starText
	}
	for si < len(steps) && steps[si].star {
		si++
	}
	return si == len(steps)
}
