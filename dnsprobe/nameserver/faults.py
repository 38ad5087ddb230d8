"""Fault rules from the scenario, compiled once and applied per query by either engine.

`compile_rules` is the only place that decides what a `FaultRule` means. It turns each rule into a plain
JSON-able dict that the Python engine (`RulePolicy`, the reference) and the Go engine (`goserver/faults.go`)
both evaluate, so neither engine interprets a glob, a query type or a delay distribution on its own:

    {"fault": "servfail",                       the query log's fault column
     "match": {"name": REGEX | null,            a regular expression (RE2 and Python alike) on the
                                                lower-case query name's text, `x.example.test.`
               "name_steps": [null | CHARS, ...] | null,  the same test as steps (`glob_steps`), which
                                                the Go engine runs without a regular expression
               "qtypes": [1, 28] | null,        null: any type
               "proto": "udp" | "tcp" | null,
               "edns": "present" | "absent" | null,  whether the query carries an OPT record
               "window": {"start_s", "end_s", "period_s"} | null,  seconds since the server started
               "probability": 0.05},
     "gate": {"kind": "always"}                 the fault applies whenever the match holds;
           | {"kind": "ratelimit", "rate": R}   only beyond R queries per second (token bucket, R deep);
           | {"kind": "race", "window_s": W},   only to a second UDP packet from one client port within W,
           | {"kind": "flow_pin", "before_s": T, "until_s": U},  only to UDP packets from a client port
                                                first seen before T, from T until U (stale conntrack or
                                                IPVS entries after a backend rollout); time windows in
                                                seconds since the server started, as the match's window
           | {"kind": "pair", "window_s": W},   UDP only: pairs a query with the next one from the same
                                                client address for the same (lower-case) name within W,
                                                from another port or with another ID (A and AAAA of one
                                                lookup; a retransmission does not pair); both of the pair
                                                are faulted, a first whose partner never comes too
     "act": {"drop": bool,
             "delay": {"dist": "fixed" | "uniform" | "normal" | "exponential", "mean_s", "spread_s"} | null,
             "rcode": int | null,               reply with this rcode, the question and no records
             "limit": "query" | "zero" | "max", the answer's size limit: the client's, 0 (TC and the
                                                question only), or none (a whole UDP answer without TC)
             "mangle": "garbage" | "wrong_id" | "wrong_question" | "tc_bit" | "uncompressed" | null,
             "flags_clear": MASK,               with rcode: header bits cleared (0x0480: AA and RA)
             "no_opt": bool,                    with rcode: no OPT record in the reply
             "swap": bool}}                     with gate pair: the normal replies, cross-wired
                                                (server.SwapPair): the first is held up to W; when its
                                                partner's is ready, each goes out with the other query's
                                                ID to the other query's address and port; a first whose
                                                partner does not come goes out as it is after W

Rules are tried in order; the first whose match holds and whose gate lets it fault decides. A gate that does
not fault (within the rate; the first packet from a port, for race; TCP or a retransmission, for pair) lets
the next rule decide. Match fields are checked in the order above and the probability is drawn last, only
when everything else held, so both engines draw random numbers for the same packets. Randomness comes from
one generator per server, seeded from the run's `fault_seed` (reported in summary.json), so a run with
`probability` rules replays: the same packets in the same order meet the same fates (each engine has its own
generator, so the two engines agree in distribution, not packet by packet).

Adding a fault means one new `act` field, match field or gate kind here and its few lines in faults.go;
what each engine does stays a primitive, what the rule means stays here. FORMERR or silence for
EDNS0 queries (an EDNS0-intolerant server or middlebox) is the match field `edns` with `act.rcode = 1` and
`act.no_opt` (action `formerr`) or `act.drop`; a lame NODATA (NOERROR, no records, AA=0, RA=0, no
additional section) is `act.rcode = 0` with `act.flags_clear` and `act.no_opt` (action `lame_nodata`).
A socket gap (ICMP port unreachable for a while) is not a
per-packet rule: `[[nameserver.servers]] gaps` windows, in which each engine closes its UDP socket and
binds it again after. CNAME-only answers need no fault (a CNAME into a zone the server does not serve
answers so); uncompressed answers are `act.mangle = "uncompressed"` (owners written out in full at reply
time). Cross-wired parallel replies (action `swap_replies`, golang/go#35521) are gate `pair` with
`act.swap`: the gate decides which two queries are partners, each engine's server holds and swaps the
bytes (server.SwapPair, goserver's swapPair).
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from typing import Any

import dns.rdatatype

from dnsprobe.codec.wire import Query, qname_text
from dnsprobe.nameserver.server import Endpoint, Fault, SwapPair
from dnsprobe.scenario import FaultRule

__all__ = [
    "RulePolicy",
    "compile_rules",
    "glob_regex",
    "glob_steps",
    "new_seed",
    "policy_for",
    "server_seed",
]

LAME_FLAGS = 0x0480  # AA and RA: a lame NODATA reply has neither
FLOW_MEMORY = 1 << 20  # client ports a flow_pin gate remembers from before T (later ones are not pinned)
RACE_MEMORY = 65536  # client ports remembered by a race gate before its table is cleared
PAIR_MEMORY = 65536  # (client address, name) pairs a pair gate remembers before its table is cleared
_NAME_CHARS = [chr(c) for c in range(0x21, 0x7F)]  # a query name's text: printable ASCII, \DDD escapes
_ANY = "".join(_NAME_CHARS)  # what `?` matches

CompiledRule = dict[str, Any]


def new_seed() -> int:
    """A fresh fault seed for a run (reported, so the run can be replayed with it)."""
    return random.SystemRandom().randrange(1 << 32)


def server_seed(seed: int, index: int) -> int:
    """The seed of the `index`-th server of a group: each server draws its own numbers."""
    return (seed + index) % (1 << 63)


def glob_steps(glob: str) -> list[str | None] | None:
    """A rule's name glob as steps, None for `*` (every name): each step is None for `*` (any run of
    characters) or the characters one position may hold ("" for none).

    The glob means what `fnmatch` says, on the lower-case name with a trailing dot added unless it ends
    with `.` or `*`; a character class is spelled out as the name characters it matches (a name's text
    is printable ASCII: other bytes are `\\DDD` escapes)."""
    pattern = glob.lower()
    pattern = pattern if pattern.endswith((".", "*")) else pattern + "."
    if pattern == "*":
        return None
    steps: list[str | None] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not steps or steps[-1] is not None:
                steps.append(None)
        elif c == "?":
            steps.append(_ANY)
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                steps.append("[")
                continue
            steps.append("".join(ch for ch in _NAME_CHARS if fnmatchcase(ch, pattern[i - 1 : j + 1])))
            i = j + 1
        else:
            steps.append(c)
    return steps


def glob_regex(glob: str) -> str | None:
    """The same test as `glob_steps` as a regular expression (no anchors: match the whole text), None
    for `*`; it reads the same in Python's `re` and Go's RE2."""
    steps = glob_steps(glob)
    if steps is None:
        return None
    out = []
    for step in steps:
        if step is None:
            out.append(".*")
        elif step == _ANY:
            out.append(".")
        elif len(step) == 1:
            out.append(re.escape(step))
        else:  # no member: a class no name character is in
            out.append("[" + "".join(map(_class_char, step)) + "]" if step else "[^\\x00-\\x7f]")
    return "".join(out)


def _class_char(ch: str) -> str:
    return ch if ch.isalnum() else f"\\x{ord(ch):02x}"


def compile_rules(rules: Sequence[FaultRule]) -> list[CompiledRule]:
    """Each rule as both engines evaluate it (see the module docstring)."""
    return [_compile(rule) for rule in rules]


def _compile(rule: FaultRule) -> CompiledRule:
    kinds = [rule.qtype] if isinstance(rule.qtype, str) else rule.qtype
    pinned = rule.action == "stale_flows"  # its times belong to the gate, which sees every packet
    windowed = not pinned and (rule.start_s > 0 or rule.end_s is not None or rule.period_s is not None)
    match = {
        "name": glob_regex(rule.name),
        "name_steps": glob_steps(rule.name),
        "qtypes": None if "*" in kinds else sorted({int(dns.rdatatype.from_text(k)) for k in kinds}),
        "proto": None if rule.proto == "any" else rule.proto,
        "edns": None if rule.edns == "any" else rule.edns,
        "window": {"start_s": rule.start_s, "end_s": rule.end_s, "period_s": rule.period_s}
        if windowed
        else None,
        "probability": rule.probability,
    }
    gate: dict[str, Any] = {"kind": "always"}
    act: dict[str, Any] = {
        "drop": False,
        "delay": None,
        "rcode": None,
        "limit": "query",
        "mangle": None,
        "flags_clear": 0,
        "no_opt": False,
        "swap": False,
    }
    action = rule.action
    if action in ("drop", "outage"):
        act["drop"] = True
    elif action in ("servfail", "refused", "nxdomain"):
        act["rcode"] = {"servfail": 2, "refused": 5, "nxdomain": 3}[action]
    elif action == "formerr":  # what a server that does not know EDNS0 says: FORMERR, no OPT record
        act["rcode"] = 1
        act["no_opt"] = True
    elif action == "lame_nodata":  # NOERROR, no records, AA=0, RA=0, no additional section
        act["rcode"] = 0
        act["flags_clear"] = LAME_FLAGS
        act["no_opt"] = True
    elif action == "truncate":
        act["limit"] = "zero"
    elif action == "oversize":
        act["limit"] = "max"
    elif action in ("garbage", "wrong_id", "wrong_question", "tc_bit", "uncompressed"):
        act["mangle"] = action
    elif action == "delay":
        act["delay"] = {
            "dist": rule.distribution,
            "mean_s": (rule.delay_ms or 0.0) / 1000,
            "spread_s": rule.jitter_ms / 1000,
        }
    elif action == "ratelimit":
        gate = {"kind": "ratelimit", "rate": rule.rate}
        if rule.over == "drop":
            act["drop"] = True
        else:
            act["rcode"] = 5
    elif action == "stale_flows":
        gate = {"kind": "flow_pin", "before_s": rule.start_s, "until_s": rule.end_s}
        act["drop"] = True
    elif action == "conntrack_race":
        gate = {"kind": "race", "window_s": rule.window_ms / 1000}
        act["drop"] = True
    elif action == "swap_replies":
        gate = {"kind": "pair", "window_s": rule.window_ms / 1000}
        act["swap"] = True
    else:  # pragma: no cover - the scenario model lists every action
        raise AssertionError(f"fault action {action!r} has no compiled form")
    return {"fault": action, "match": match, "gate": gate, "act": act}


class _Rule:
    """One compiled rule as the Python engine runs it, with its gate's state."""

    def __init__(self, compiled: CompiledRule, rng: random.Random) -> None:
        match, gate, act = compiled["match"], compiled["gate"], compiled["act"]
        self._rng = rng
        self._name = None if match["name"] is None else re.compile(match["name"], re.S).fullmatch
        self._qtypes = None if match["qtypes"] is None else frozenset(match["qtypes"])
        self._proto = match["proto"]
        self._edns = match.get("edns")
        window = match["window"]
        self._window = None if window is None else (window["start_s"], window["end_s"], window["period_s"])
        self._probability = float(match["probability"])
        self._gate = gate["kind"]
        self._rate = float(gate.get("rate") or 0.0)
        self._gate_window = float(gate.get("window_s") or 0.0)
        self._pin_before = float(gate.get("before_s") or 0.0)
        self._pin_until = float(gate.get("until_s") or 0.0)
        self._first_seen: set[Endpoint] = set()
        self._delay = act["delay"]
        limit = act["limit"]
        self.fault = Fault(
            compiled["fault"],
            drop=act["drop"],
            rcode=act["rcode"],
            truncate=limit == "zero",
            ignore_udp_limit=limit == "max",
            mangle=act["mangle"],
            flags_clear=int(act.get("flags_clear") or 0),
            no_opt=bool(act.get("no_opt")),
        )
        self._tokens = self._rate
        self._refilled: float | None = None
        self._last_seen: dict[Endpoint, float] = {}
        # pair: (client address, name) -> the first query's pair, when it came, its port and ID
        self._pending: dict[tuple[str, bytes], tuple[SwapPair, float, int, int]] = {}
        self._swap = bool(act.get("swap"))

    def matches(self, query: Query, proto: str, elapsed: float) -> bool:
        if self._proto is not None and proto != self._proto:
            return False
        if self._qtypes is not None and query.qtype not in self._qtypes:
            return False
        if self._edns is not None and (query.edns is not None) != (self._edns == "present"):
            return False
        if self._window is not None:
            start, end, period = self._window
            at = math.fmod(elapsed, period) if period is not None else elapsed
            if at < start or (end is not None and at >= end):
                return False
        if self._name is not None and not self._name(qname_text(query.key)):
            return False
        return self._probability >= 1.0 or self._rng.random() < self._probability

    def decide(self, query: Query, proto: str, client: Endpoint, now: float, elapsed: float) -> Fault | None:
        """The fault for a matching query, or None to let the next rule (or the normal answer) decide."""
        gate = self._gate
        if gate == "pair":
            pair = self._paired(query, proto, client, now)
            if pair is None:
                return None
            return Fault(self.fault.name, swap=pair) if self._swap else self.fault
        if gate == "ratelimit" and self._within_rate(now):
            return None
        if gate == "race" and not self._raced(proto, client, now):
            return None
        if gate == "flow_pin" and not self._pinned(proto, client, elapsed):
            return None
        if self._delay is not None:
            return Fault(self.fault.name, delay=self._draw_delay())
        return self.fault

    def _draw_delay(self) -> float:
        delay = self._delay
        mean, spread, dist = delay["mean_s"], delay["spread_s"], delay["dist"]
        if dist == "uniform":
            value = mean - spread + 2 * spread * self._rng.random()
        elif dist == "normal":
            value = self._rng.gauss(mean, spread)
        elif dist == "exponential":
            value = self._rng.expovariate(1 / mean) + spread
        else:
            value = mean
        return max(0.0, float(value))

    def _within_rate(self, now: float) -> bool:
        rate = self._rate
        if self._refilled is not None:
            self._tokens = min(rate, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _pinned(self, proto: str, client: Endpoint, elapsed: float) -> bool:
        if proto != "udp":
            return False  # a new TCP connection is a new flow
        key = (client[0], client[1])
        if elapsed < self._pin_before:
            if len(self._first_seen) < FLOW_MEMORY:
                self._first_seen.add(key)
            return False
        return elapsed < self._pin_until and key in self._first_seen

    def _paired(self, query: Query, proto: str, client: Endpoint, now: float) -> SwapPair | None:
        """The pair this query belongs to: its partner's, or a new one it starts; None for TCP and for a
        retransmission of the waiting query (same port and ID), which is answered as it is."""
        if proto != "udp":
            return None
        key = (client[0], query.key)
        waiting = self._pending.get(key)
        if waiting is not None:
            pair, since, port, qid = waiting
            if now - since < self._gate_window:
                if (port, qid) == (client[1], query.id):
                    return None
                del self._pending[key]
                return pair
        if len(self._pending) >= PAIR_MEMORY:
            self._pending.clear()
        pair = SwapPair(self._gate_window)
        self._pending[key] = (pair, now, client[1], query.id)
        return pair

    def _raced(self, proto: str, client: Endpoint, now: float) -> bool:
        if proto != "udp":
            return False  # a TCP connection is one conntrack entry from its first packet
        key = (client[0], client[1])
        last = self._last_seen.get(key)
        if last is not None and now - last < self._gate_window:
            return True  # the one that lost the race; the first stays the reference
        if len(self._last_seen) >= RACE_MEMORY:
            self._last_seen.clear()
        self._last_seen[key] = now
        return False


class RulePolicy:
    """The `Policy` for a list of rules. `clock` is monotonic seconds; time windows count from creation."""

    def __init__(
        self,
        rules: Sequence[FaultRule],
        *,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ) -> None:
        rng = random.Random(seed)  # noqa: S311 (fault injection, not cryptography)
        self._rules = [_Rule(compiled, rng) for compiled in compile_rules(rules)]
        self._clock = clock
        self._started = clock()

    def restart_clock(self) -> None:
        """Count time windows from now (call when the server starts answering)."""
        self._started = self._clock()

    def fault_for(self, query: Query, proto: str, client: Endpoint) -> Fault | None:
        now = self._clock()
        elapsed = now - self._started
        for rule in self._rules:
            if rule.matches(query, proto, elapsed):
                fault = rule.decide(query, proto, client, now, elapsed)
                if fault is not None:
                    return fault
        return None


def policy_for(rules: Sequence[FaultRule], *, seed: int | None = None) -> RulePolicy | None:
    """None when there is no rule, so the server keeps its fast path."""
    return RulePolicy(rules, seed=seed) if rules else None
