"""runs/<id>/junit.xml: the run's checks and SLO gates as JUnit XML, for CI systems.

One <testsuite> per run; one <testcase> per check, its classname the mode the check is about ("run" for
run-wide checks); a failed check carries a <failure> with its detail. Findings from the rules go into
<system-out>, so a CI page shows the likely cause next to the red test. Written with ElementTree, so every
string is escaped; the file goes to a temp name first, then `os.replace`.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _classname(check: Mapping[str, Any]) -> tuple[str, str]:
    """(class, test) for a check: its mode's class, or the run's."""
    name = str(check.get("name") or "?")
    if "mode" in check:  # checks name their mode (summaries since schema version 2)
        mode = check["mode"]
        if not isinstance(mode, str) or not mode:
            return "dnsprobe.run", name
        return f"dnsprobe.{mode}", name.removeprefix(f"{mode}: ")
    head, sep, rest = name.partition(": ")  # older summaries named mode checks "<mode>: <what>"
    return (f"dnsprobe.{head}", rest) if sep and " " not in head else ("dnsprobe.run", name)


def render_junit(summary: Mapping[str, Any]) -> bytes:
    checks = [c for c in summary.get("checks") or () if isinstance(c, Mapping)]
    failures = sum(1 for c in checks if c.get("passed") is not True)
    suite = ET.Element(
        "testsuite",
        name=f"dnsprobe {summary.get('scenario') or '?'}",
        tests=str(len(checks)),
        failures=str(failures),
        errors="0",
        skipped="0",
        timestamp=str(summary.get("started_at") or ""),
    )
    props = ET.SubElement(suite, "properties")
    for key in ("run_id", "scenario", "finished"):
        ET.SubElement(props, "property", name=key, value=str(summary.get(key)))
    for check in checks:
        classname, name = _classname(check)
        case = ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")
        if check.get("passed") is not True:
            detail = str(check.get("detail") or "")
            failure = ET.SubElement(case, "failure", message=detail.splitlines()[0] if detail else "failed")
            failure.text = detail
    findings = [f for f in summary.get("findings") or () if isinstance(f, Mapping)]
    if findings:
        out = ET.SubElement(suite, "system-out")
        out.text = "\n\n".join(
            f"[{f.get('severity')}] {f.get('rule')} ({', '.join(map(str, f.get('modes') or ()))})\n"
            f"seen: {f.get('seen')}\nwhy: {f.get('why')}\nfix: {f.get('fix')}"
            for f in findings
        )
    ET.indent(suite)
    body: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def write_junit(summary: Mapping[str, Any], path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(render_junit(summary))
    tmp.replace(path)
    return path
