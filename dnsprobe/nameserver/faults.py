"""Fault rules from the scenario, applied per query: the `Policy` the embedded nameserver asks.

Rules are tried in order; the first whose match (name glob, query type, protocol, time window since the
server started, probability) holds decides. Two actions only sometimes fault and otherwise let the next
rule decide: `ratelimit` (within the rate the query goes on) and `conntrack_race` (only a second packet
from one client source port within `window_ms` is dropped, as a Kubernetes node's conntrack table loses
one of the A and AAAA queries glibc and musl send from one socket).

The fault's name in the query log is the rule's action (`ratelimit` and `conntrack_race` log the
packets they drop or refuse).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from fnmatch import translate

import dns.rcode
import dns.rdatatype

from dnsprobe.nameserver.server import Endpoint, Fault
from dnsprobe.nameserver.wire import Query, qname_text
from dnsprobe.scenario import FaultRule

__all__ = ["RulePolicy", "policy_for"]

_RACE_MEMORY = 65536  # client ports remembered by conntrack_race before the table is cleared

_FIXED: dict[str, Fault] = {
    "drop": Fault("drop", drop=True),
    "outage": Fault("outage", drop=True),
    "servfail": Fault("servfail", rcode=dns.rcode.SERVFAIL),
    "refused": Fault("refused", rcode=dns.rcode.REFUSED),
    "nxdomain": Fault("nxdomain", rcode=dns.rcode.NXDOMAIN),
    "truncate": Fault("truncate", truncate=True),
    "oversize": Fault("oversize", ignore_udp_limit=True),
    "garbage": Fault("garbage", mangle="garbage"),
    "wrong_id": Fault("wrong_id", mangle="wrong_id"),
    "wrong_question": Fault("wrong_question", mangle="wrong_question"),
    "tc_bit": Fault("tc_bit", mangle="tc_bit"),
    "conntrack_race": Fault("conntrack_race", drop=True),
}


class _Rule:
    """One compiled `FaultRule` and its state (the rate limiter's bucket, the race's last packets)."""

    def __init__(self, rule: FaultRule, rng: random.Random) -> None:
        self.rule = rule
        self.action = rule.action
        self._rng = rng
        pattern = rule.name.lower()
        pattern = pattern if pattern.endswith((".", "*")) else pattern + "."
        self._name = None if pattern == "*" else re.compile(translate(pattern)).match
        kinds = [rule.qtype] if isinstance(rule.qtype, str) else rule.qtype
        self._qtypes = None if "*" in kinds else frozenset(int(dns.rdatatype.from_text(k)) for k in kinds)
        self._proto = None if rule.proto == "any" else rule.proto
        self._windowed = rule.start_s > 0 or rule.end_s is not None or rule.period_s is not None
        self._probability = rule.probability
        self.fault = _FIXED.get(rule.action)
        if rule.action == "ratelimit":
            name = "ratelimit"
            self.fault = (
                Fault(name, drop=True) if rule.over == "drop" else Fault(name, rcode=dns.rcode.REFUSED)
            )
        self._tokens = rule.rate or 0.0
        self._refilled: float | None = None
        self._last_seen: dict[Endpoint, float] = {}

    def matches(self, query: Query, proto: str, elapsed: float) -> bool:
        rule = self.rule
        if self._proto is not None and proto != self._proto:
            return False
        if self._qtypes is not None and query.qtype not in self._qtypes:
            return False
        if self._windowed:
            at = elapsed % rule.period_s if rule.period_s is not None else elapsed
            if at < rule.start_s or (rule.end_s is not None and at >= rule.end_s):
                return False
        if self._name is not None and not self._name(qname_text(query.key)):
            return False
        return self._probability >= 1.0 or self._rng.random() < self._probability

    def decide(self, proto: str, client: Endpoint, now: float) -> Fault | None:
        """The fault for a matching query, or None to let the next rule (or the normal answer) decide."""
        action = self.action
        if action == "delay":
            return Fault("delay", delay=self._delay())
        if action == "ratelimit":
            return self._over_rate(now)
        if action == "conntrack_race":
            return self._raced(proto, client, now)
        return self.fault

    def _delay(self) -> float:
        rule = self.rule
        mean = (rule.delay_ms or 0.0) / 1000
        spread = rule.jitter_ms / 1000
        if rule.distribution == "uniform":
            value = self._rng.uniform(mean - spread, mean + spread)
        elif rule.distribution == "normal":
            value = self._rng.gauss(mean, spread)
        elif rule.distribution == "exponential":
            value = self._rng.expovariate(1 / mean) + spread
        else:
            value = mean
        return max(0.0, value)

    def _over_rate(self, now: float) -> Fault | None:
        rate = self.rule.rate or 0.0
        if self._refilled is not None:
            self._tokens = min(rate, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return self.fault

    def _raced(self, proto: str, client: Endpoint, now: float) -> Fault | None:
        if proto != "udp":
            return None  # a TCP connection is one conntrack entry from its first packet
        key = (client[0], client[1])
        last = self._last_seen.get(key)
        if last is not None and now - last < self.rule.window_ms / 1000:
            return self.fault  # the one that lost the race; the first stays the reference
        if len(self._last_seen) >= _RACE_MEMORY:
            self._last_seen.clear()
        self._last_seen[key] = now
        return None


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
        self._rules = [_Rule(rule, rng) for rule in rules]
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
                fault = rule.decide(proto, client, now)
                if fault is not None:
                    return fault
        return None


def policy_for(rules: Sequence[FaultRule], *, seed: int | None = None) -> RulePolicy | None:
    """None when there is no rule, so the server keeps its fast path."""
    return RulePolicy(rules, seed=seed) if rules else None
