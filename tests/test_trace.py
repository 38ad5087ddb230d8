"""The Go resolver trace parser, on golden files (real stderr of several Go releases, as users paste it)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dnsprobe.analyse.trace import (
    TraceEvent,
    TraceReport,
    format_trace,
    parse_trace,
    parse_trace_line,
    trace_file_lines,
)

DATA = Path(__file__).resolve().parent / "data" / "trace"
CASES = sorted(p.stem for p in DATA.glob("*.log"))
CONTRACT_KEYS = {"resolver", "selection", "names", "order_counts", "lines", "trace_lines"}


def expected(case: str) -> dict[str, object]:
    data = json.loads((DATA / f"{case}.json").read_text(encoding="utf-8"))
    return {key: value for key, value in data.items() if not key.startswith("_")}


# --- golden files -----------------------------------------------------------------------------------


def test_every_golden_log_has_its_json() -> None:
    assert len(CASES) >= 13
    assert sorted(p.stem for p in DATA.glob("*.json")) == CASES
    for case in CASES:
        data = json.loads((DATA / f"{case}.json").read_text(encoding="utf-8"))
        assert data.get("_source"), f"{case}.json says nowhere where its log comes from"


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    report = parse_trace(trace_file_lines((DATA / f"{case}.log").read_bytes()))
    assert report.to_json() == expected(case)


@pytest.mark.parametrize(
    ("case", "resolver"),
    [
        ("go127_netgo", "go"),
        ("go127_cgo_tag", "cgo"),
        ("go127_godebug_go", "go"),
        ("go127_godebug_cgo", "cgo"),
        ("go127_dynamic_mixed", "mixed"),
        ("go127_dynamic_all_cgo", "cgo"),
        ("go127_level1_go", "go"),
        ("go121_netgo", "go"),
        ("go122_cgo", "cgo"),
        ("kubectl_timestamps", "mixed"),
        ("kubectl_prefix", "go"),
        ("json_structured_logs", "go"),
        ("crlf_and_truncated", "mixed"),
        ("no_trace_lines", "unknown"),
        ("ignored_cgo_godebug", "go"),
        ("powershell_utf16", "cgo"),
    ],
)
def test_golden_verdicts(case: str, resolver: str) -> None:
    """The verdicts the golden JSON files pin, spelt out so a regenerated JSON cannot quietly flip one."""
    assert expected(case)["resolver"] == resolver


def test_text_file_object_reads_like_trace_file_lines() -> None:
    """analysis.py hands parse_trace an open text file, whose lines keep their "\\n"."""
    for case in ("go127_dynamic_mixed", "kubectl_prefix", "json_structured_logs"):
        with (DATA / f"{case}.log").open(encoding="utf-8", errors="replace") as lines:
            assert parse_trace(lines).to_json() == expected(case)


# --- one line -----------------------------------------------------------------------------------------

GO_ = "go package net: "


@pytest.mark.parametrize(
    ("line", "kind", "resolver", "text"),
    [
        # Go 1.24+
        (GO_ + "using the Go DNS resolver", "selection", "go", "using the Go DNS resolver"),
        (GO_ + "using the cgo DNS resolver", "selection", "cgo", "using the cgo DNS resolver"),
        (GO_ + "GODEBUG setting forcing use of the Go resolver", "selection", "go", None),
        (GO_ + "GODEBUG setting forcing use of the cgo resolver", "selection", "cgo", None),
        (GO_ + "dynamic selection of DNS resolver", "selection", None, None),
        (
            GO_
            + "ignoring GODEBUG=netdns=cgo as the binary was compiled without support for the cgo resolver",
            "ignored",
            "go",
            None,
        ),
        (GO_ + "GODEBUG=netdns contains an invalid dns mode, ignoring it", "invalid", None, None),
        # Go 1.21-1.23 (and before)
        (GO_ + "built with netgo build tag; using Go's DNS resolver", "selection", "go", None),
        (GO_ + "cgo resolver not supported; using Go's DNS resolver", "selection", "go", None),
        (GO_ + "GODEBUG setting forcing use of Go's resolver", "selection", "go", None),
        (GO_ + "using cgo DNS resolver", "selection", "cgo", None),
        # level 2
        (GO_ + "confVal.netCgo = false  netGo = true", "conf", "go", "confVal.netCgo = false  netGo = true"),
        (GO_ + "confVal.netCgo = true  netGo = false", "conf", None, None),
        # an unknown wording is kept, undecided
        (GO_ + "consulting the oracle for DNS", "selection", None, "consulting the oracle for DNS"),
    ],
)
def test_startup_lines(line: str, kind: str, resolver: str | None, text: str | None) -> None:
    event = parse_trace_line(line, 7)
    assert event is not None
    assert (event.line_no, event.kind, event.resolver, event.name, event.order) == (
        7,
        kind,
        resolver,
        None,
        None,
    )
    assert event.text == (text if text is not None else line.removeprefix(GO_))


@pytest.mark.parametrize(
    ("line", "name", "order", "resolver"),
    [
        (GO_ + "hostLookupOrder(api.example.test) = cgo", "api.example.test", "cgo", "cgo"),
        (
            GO_ + "hostLookupOrder(web.default.svc.cluster.local) = files,dns",
            "web.default.svc.cluster.local",
            "files,dns",
            "go",
        ),
        (GO_ + "hostLookupOrder(api.example.test.) = dns,files", "api.example.test.", "dns,files", "go"),
        (GO_ + "hostLookupOrder(db) = files", "db", "files", "go"),
        (GO_ + "hostLookupOrder(db) = dns", "db", "dns", "go"),
        (GO_ + "addrLookupOrder(10.0.0.1) = dns,files", "10.0.0.1", "dns,files", "go"),
        (GO_ + "addrLookupOrder(fd00::1) = cgo", "fd00::1", "cgo", "cgo"),
        # Go <= 1.20: port/CNAME/PTR lookups asked hostLookupOrder(nil, "")
        (GO_ + "hostLookupOrder() = cgo", "", "cgo", "cgo"),
        # what String() prints for an order it has no name for
        (GO_ + "hostLookupOrder(x) = hostLookupOrder=9??", "x", "hostLookupOrder=9??", "go"),
    ],
)
def test_order_lines(line: str, name: str, order: str, resolver: str) -> None:
    event = parse_trace_line(line, 3)
    assert event == TraceEvent(3, "order", resolver, name, order, line.removeprefix(GO_))


ORDER = "hostLookupOrder(api.example.test) = files,dns"


@pytest.mark.parametrize(
    "line",
    [
        GO_ + ORDER,
        GO_ + ORDER + "\r\n",
        "2026-11-20T10:00:00.123456789Z " + GO_ + ORDER,
        "[pod/api-7d9f8c6b5-x2x9q/app] " + GO_ + ORDER,
        "[pod/api-7d9f8c6b5-x2x9q/app] 2026-11-20T10:00:00.123456789Z " + GO_ + ORDER,
        "2026-11-20T10:00:00.123456789Z stderr F " + GO_ + ORDER,
        "Nov 20 10:00:00 node-1 api[4242]: " + GO_ + ORDER,
        '{"log":"' + GO_ + ORDER + '\\n","stream":"stderr","time":"2026-11-20T10:00:00.1Z"}',
        '{"time":"2026-11-20T10:00:00.1Z","level":"INFO","msg":"' + GO_ + ORDER + '"}',
        'time=2026-11-20T10:00:00.1Z level=INFO msg="' + GO_ + ORDER + '"',
        # JSON inside JSON: a log shipper wrapping an app's JSON line that quotes a child's stderr
        json.dumps({"log": json.dumps({"msg": "child", "stderr": GO_ + ORDER + "\n"}) + "\n"}),
        # \u escapes, as some JSON encoders write
        '{"msg":"' + GO_ + ORDER.replace("(", "\\u0028") + '"}',
        # a JSON line cut before its string closed
        '{"log":"' + GO_ + ORDER,
        "progress 40%\r" + GO_ + ORDER,
        "\t " + GO_ + ORDER + "   ",
    ],
)
def test_prefixes_and_wrappers_fall_away(line: str) -> None:
    event = parse_trace_line(line, 1)
    assert event is not None
    assert (event.kind, event.name, event.order, event.resolver) == (
        "order",
        "api.example.test",
        "files,dns",
        "go",
    )
    assert event.text == ORDER


@pytest.mark.parametrize(
    "line",
    [
        "",
        "2026/11/20 10:00:00 lookup api.example.test: no such host",
        "hostLookupOrder(api.example.test) = cgo",  # no marker
        "using the Go DNS resolver",
        GO_,
        GO_.rstrip(),
        GO_ + "   ",
        # cut short
        GO_ + "hostLookupOrder(api.exa",
        GO_ + "hostLookupOrder(api.example.test) = ",
        GO_ + "hostLookupOrder(api.example.test) = files,d",
        GO_ + "hostLookupOrder(api.example.test) = cg",
        GO_ + "hostLookupOrd",
        GO_ + "addrLookupOrder(10.0.0.1",
        GO_ + "confVal.netCgo = fal",
        GO_ + "using the Go DN",
        GO_ + "dynamic selection of",
        # torn: another writer's line landed between the runtime's separate writes
        GO_ + "hostLookupOrder(2026/11/20 10:00:00 probe: tick",
        GO_ + "hostLookupOrder(api.example.test) = 2026/11/20 10:00:00 probe: tick",
        GO_ + "hostLookupOrder(api.example.test) = filesxyz",
    ],
)
def test_no_event(line: str) -> None:
    assert parse_trace_line(line, 1) is None


def test_first_of_several_messages_in_one_line() -> None:
    line = '{"log":"' + GO_ + "using the Go DNS resolver\\n" + GO_ + ORDER + '\\n"}'
    event = parse_trace_line(line, 5)
    assert event is not None and event.kind == "selection" and event.line_no == 5
    assert parse_trace([line]).trace_lines == 2


def test_trace_event_is_frozen() -> None:
    event = parse_trace_line(GO_ + ORDER, 1)
    assert event is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.order = "cgo"  # type: ignore[misc]


# --- the verdict ------------------------------------------------------------------------------------


def lines_of(*texts: str) -> list[str]:
    return [GO_ + text for text in texts]


@pytest.mark.parametrize(
    ("lines", "resolver"),
    [
        ([], "unknown"),
        (["2026/11/20 app started"], "unknown"),
        (lines_of("dynamic selection of DNS resolver"), "unknown"),
        (lines_of("confVal.netCgo = false  netGo = false", "dynamic selection of DNS resolver"), "unknown"),
        (lines_of("GODEBUG=netdns contains an invalid dns mode, ignoring it"), "unknown"),
        (lines_of("using the Go DNS resolver"), "go"),
        (lines_of("GODEBUG setting forcing use of the Go resolver"), "go"),
        (lines_of("built with netgo build tag; using Go's DNS resolver"), "go"),
        (lines_of("cgo resolver not supported; using Go's DNS resolver"), "go"),
        (
            lines_of(
                "ignoring GODEBUG=netdns=cgo as the binary was compiled without support for the cgo resolver"
            ),
            "go",
        ),
        (lines_of("confVal.netCgo = false  netGo = true"), "go"),
        (lines_of("using the cgo DNS resolver"), "cgo"),
        (lines_of("GODEBUG setting forcing use of the cgo resolver"), "cgo"),
        (lines_of("using cgo DNS resolver"), "cgo"),
        # two programs (or builds) in one log, with no per-name lines
        (lines_of("using the Go DNS resolver", "using the cgo DNS resolver"), "mixed"),
        # per-name lines decide, whatever the startup line says
        (lines_of("dynamic selection of DNS resolver", "hostLookupOrder(a.local) = cgo"), "cgo"),
        (lines_of("using cgo DNS resolver", "hostLookupOrder(a) = files,dns"), "go"),
        (lines_of("hostLookupOrder(a) = files,dns", "hostLookupOrder(b.local) = cgo"), "mixed"),
        (lines_of("hostLookupOrder(a) = files,dns", "hostLookupOrder(a) = cgo"), "mixed"),
    ],
)
def test_resolver_rule(lines: list[str], resolver: str) -> None:
    assert parse_trace(lines).resolver == resolver


def test_counts_and_names() -> None:
    report = parse_trace(
        [
            "2026/11/20 app started",
            *lines_of(
                "using the cgo DNS resolver",
                "using the cgo DNS resolver",  # a restart: de-duplicated
                "hostLookupOrder(a) = files,dns",
                "hostLookupOrder(b.local) = cgo",
                "hostLookupOrder(a) = files,dns",
                "hostLookupOrder(a) = cgo",
                "addrLookupOrder(10.0.0.1) = dns,files",
            ),
        ]
    )
    assert report.lines == 8
    assert report.trace_lines == 7
    assert report.selection == ["using the cgo DNS resolver"]
    assert report.names == {"a": ["files,dns", "cgo"], "b.local": ["cgo"], "10.0.0.1": ["dns,files"]}
    assert report.order_counts == {"files,dns": 2, "cgo": 2, "dns,files": 1}
    assert (report.go_resolver_names, report.cgo_resolver_names, report.name_count) == (2, 2, 3)
    assert report.resolver == "mixed"
    assert set(report.to_json()) == CONTRACT_KEYS


def synthetic_load_trace(lookups: int) -> Iterator[str]:
    """A load run's stderr: one trace line per lookup, mostly of distinct names, app lines between."""
    yield GO_ + "confVal.netCgo = false  netGo = false"
    yield GO_ + "dynamic selection of DNS resolver"
    for i in range(lookups):
        if i % 10 == 9:
            yield f"2026-11-20T10:00:00.{i:09d}Z {GO_}hostLookupOrder(r{i}.printer.local) = cgo"
        else:
            name = f"r{i % 50_000}.load.example.test"
            yield f"2026-11-20T10:00:00.{i:09d}Z {GO_}hostLookupOrder({name}) = files,dns"
        if i % 1000 == 0:
            yield f'{{"level":"info","msg":"progress","done":{i}}}'


def test_large_input_streams_with_capped_names() -> None:
    lookups = 200_000
    report = parse_trace(synthetic_load_trace(lookups), max_names=200)
    assert report.lines == 2 + lookups + lookups // 1000
    assert report.trace_lines == 2 + lookups
    assert report.order_counts == {"files,dns": lookups * 9 // 10, "cgo": lookups // 10}
    assert len(report.names) == 200
    assert list(report.names)[:2] == ["r0.load.example.test", "r1.load.example.test"]
    assert report.go_resolver_names == 45_000  # r0..r49999 less those ending in 9 (they go to cgo)
    assert report.cgo_resolver_names == lookups // 10
    assert report.name_count == 45_000 + lookups // 10
    assert report.resolver == "mixed"
    assert report.selection == ["confVal.netCgo = false  netGo = false", "dynamic selection of DNS resolver"]
    summary = format_trace(report)
    assert f"... and {report.name_count - 30} more" in summary


def test_max_names_keeps_adding_orders_to_kept_names() -> None:
    report = parse_trace(
        lines_of(
            "hostLookupOrder(a) = files,dns", "hostLookupOrder(b) = files,dns", "hostLookupOrder(a) = cgo"
        ),
        max_names=1,
    )
    assert report.names == {"a": ["files,dns", "cgo"]}
    assert report.name_count == 2
    assert parse_trace(lines_of("hostLookupOrder(a) = dns"), max_names=0).names == {}
    with pytest.raises(ValueError, match="max_names"):
        parse_trace([], max_names=-1)


# --- bytes to lines -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"", []),
        (b"\n", [""]),
        (b"a\nb\n", ["a", "b"]),
        (b"a\r\nb\r\n", ["a", "b"]),
        (b"a\r\nb", ["a", "b"]),
        (b"a\n\nb", ["a", "", "b"]),
        (b"a\rb\n", ["a\rb"]),  # a bare CR is not a line break (the parser reads past it)
        (b"\xef\xbb\xbfa\r\n", ["a"]),
        (b"caf\xc3\xa9 \xff\xfe!\n", ["café \ufffd\ufffd!"]),
        ("\ufeffa\r\nb\r\n".encode("utf-16-le"), ["a", "b"]),
        ("\ufeffa\nb".encode("utf-16-be"), ["a", "b"]),
    ],
)
def test_trace_file_lines(data: bytes, lines: list[str]) -> None:
    assert list(trace_file_lines(data)) == lines


# --- for people ---------------------------------------------------------------------------------------


def test_format_trace_summary() -> None:
    report = parse_trace(trace_file_lines((DATA / "go127_dynamic_mixed.log").read_bytes()))
    text = format_trace(report)
    first, *rest = text.splitlines()
    assert first.startswith("resolver: mixed (3 names on Go's resolver, 3 names on cgo)")
    assert "  dynamic selection of DNS resolver" in rest
    assert any(line.split() == ["printer.local", "cgo"] for line in rest)
    assert any(line.split() == ["api.example.test", "files,dns"] for line in rest)
    assert rest[-1] == "read 16 lines, 9 trace lines"
    assert "[" not in text  # the CLI prints through rich: no markup by accident


def test_format_trace_caps_names() -> None:
    report = parse_trace(lines_of(*(f"hostLookupOrder(n{i}) = files,dns" for i in range(45))))
    text = format_trace(report)
    assert "n29" in text and "n30 " not in text
    assert "  ... and 15 more" in text


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        ([], "no Go resolver trace in 0 lines"),
        (lines_of("dynamic selection of DNS resolver"), "dynamic selection"),
        (lines_of("using the Go DNS resolver"), "GODEBUG=netdns=+2"),
        (lines_of("using the Go DNS resolver", "using the cgo DNS resolver"), "disagree"),
        (lines_of("hostLookupOrder() = cgo"), "no name"),
    ],
)
def test_format_trace_explains(lines: list[str], says: str) -> None:
    assert says in format_trace(parse_trace(lines))


def test_empty_report() -> None:
    report = TraceReport()
    assert report.to_json() == {
        "resolver": "unknown",
        "selection": [],
        "names": {},
        "order_counts": {},
        "lines": 0,
        "trace_lines": 0,
    }
