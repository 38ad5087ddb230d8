"""Each rule alone on its golden case (tests/data/rules/<rule>.json): it fires with exactly the recorded
finding on the evidence that shows the problem, and stays quiet on the near miss beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dnsprobe.judge import rules

DATA = Path(__file__).parent / "data" / "rules"
CASES = sorted(p.stem for p in DATA.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return case


def test_every_rule_has_a_golden_case() -> None:
    assert sorted(rule.__name__ for rule in rules.RULES) == CASES


@pytest.mark.parametrize("name", CASES)
def test_rule_fires_on_its_golden_case(name: str) -> None:
    case = load(name)
    finding = getattr(rules, name)(case["fires"]["summary"])
    assert finding is not None
    assert finding.to_json() == case["fires"]["finding"]
    assert finding.seen and finding.why and finding.fix


@pytest.mark.parametrize("name", CASES)
def test_rule_is_quiet_on_the_near_miss(name: str) -> None:
    assert getattr(rules, name)(load(name)["quiet"]["summary"]) is None


def test_diagnose_orders_by_severity_and_keeps_each_rule_once() -> None:
    merged = load("ndots_expansion")["fires"]["summary"]
    merged["modes"] += load("glibc_linked")["fires"]["summary"]["modes"]
    found = rules.diagnose(merged)
    assert [f["rule"] for f in found] == ["glibc_linked", "ndots_expansion"]
    assert set(found[0]) == {"rule", "severity", "modes", "seen", "why", "fix"}


def test_remediation_follows_the_cgo_decision_tree() -> None:
    fix = load("glibc_linked")["fires"]["finding"]["fix"]
    assert "CGO_ENABLED=0" in fix and "distroless/static" in fix
    assert "same libc" in fix and "alpine" in fix and "distroless/base" in fix


def test_a_missing_library_is_not_a_missing_loader() -> None:
    """musl's loader ran and named libresolv.so.2 (catalog 41): glibc_linked must not say the loader is
    missing, and libresolv_missing must not fire when the kernel found no loader at all."""
    case = load("libresolv_missing")
    loader_ran = rules.glibc_linked(case["fires"]["summary"])
    assert loader_ran is not None and loader_ran.severity == "info"
    no_loader = rules.glibc_linked(case["quiet"]["summary"])
    assert no_loader is not None and no_loader.severity == "critical"


def test_a_finding_that_explains_the_timeouts_supersedes_the_bare_fingerprint() -> None:
    """On catalog 40's run the timeout fingerprint holds too, but its advice (look for unanswered
    queries) is wrong there: every query was answered. diagnose keeps only the better explanation."""
    summary = load("cross_wired_replies")["fires"]["summary"]
    assert rules.timeout_fingerprint(summary) is not None
    found = [f["rule"] for f in rules.diagnose(summary)]
    assert "cross_wired_replies" in found and "timeout_fingerprint" not in found
    alone = [f["rule"] for f in rules.diagnose(summary, rules=(rules.timeout_fingerprint,))]
    assert alone == ["timeout_fingerprint"]
