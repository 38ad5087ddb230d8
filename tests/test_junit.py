"""junit.xml: one testcase per check, failures carry the detail, findings go to system-out, all escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from dnsprobe.judge.junit import render_junit, write_junit

SUMMARY = {
    "run_id": "r1",
    "scenario": "quickstart",
    "started_at": "2026-11-23T11:15:00+00:00",
    "finished": True,
    "checks": [
        {"name": "go: resolver is go", "passed": True, "detail": "the trace shows go"},
        {"name": "musl: p99 <= 100 ms", "passed": False, "detail": "p99 was 1003 ms <&>"},
        {"name": "run completed", "passed": False, "detail": "interrupted after 5 lookups"},
    ],
    "findings": [
        {
            "rule": "musl_refused_wait",
            "severity": "critical",
            "modes": ["musl"],
            "seen": "s",
            "why": "w",
            "fix": "f",
        }
    ],
}


def test_one_testcase_per_check_and_failures_counted(tmp_path: Path) -> None:
    path = write_junit(SUMMARY, tmp_path / "junit.xml")
    suite = ET.parse(path).getroot()
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures")) == ("3", "2")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("dnsprobe.go", "resolver is go"),
        ("dnsprobe.musl", "p99 <= 100 ms"),
        ("dnsprobe.run", "run completed"),
    ]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "p99 was 1003 ms <&>"
    out = suite.find("system-out")
    assert out is not None and "musl_refused_wait" in (out.text or "")
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]


def test_no_checks_is_an_empty_passing_suite() -> None:
    suite = ET.fromstring(render_junit({"checks": []}))
    assert (suite.get("tests"), suite.get("failures"), suite.findall("testcase")) == ("0", "0", [])
