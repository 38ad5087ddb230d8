"""Hypothesis drives the CLI in-process (`dnsprobe.cli.main(argv)`) with generated bad arguments and files:
every outcome is an exit code in {0, 1, 2} and never a traceback. Each generated command fails before
any build or load (a run gets an unusable --out, a bench an unusable --cache), so this stays fast."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnsprobe.cli import main

ROOT = Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# what a hostile or unlucky user types: no NUL (argv cannot hold one), emoji codes, markup, odd paths
WORDS = st.sampled_from(
    [":-1:", "[bold]x[/]", "[/]", "-", "/", "/dev/null", "/proc/self/status", "..", "", " ", "--json",
     "-x", "--", "go", "cgo@1.22", "musl@", "@", "nope", "0", "-1", "1e309", "nan", "inf", "~", "$HOME"]
)  # fmt: skip
TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=24)
ARG = WORDS | TEXT

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
MODE_KEYS = [
    "mode",
    "status",
    "resolver",
    "lookups",
    "ok",
    "failures",
    "latency_ms",
    "wire_queries_per_lookup",
]
VALUE = (
    JSON | st.sampled_from(["go", "cgo", "ran", "pending", 0, 10, -1]) | st.dictionaries(st.just("p99"), JSON)
)
MODE_ENTRY = st.fixed_dictionaries(
    {"mode": st.sampled_from(["go", "cgo"]) | JSON}, optional=dict.fromkeys(MODE_KEYS[1:], VALUE)
)
SUMMARY = st.fixed_dictionaries(
    {"modes": st.lists(MODE_ENTRY | JSON, max_size=4)},
    optional={"scenario": JSON, "interrupted": JSON, "finished": JSON},
)

SCENARIO_KEYS = {
    "name": JSON | WORDS,
    "modes": JSON | st.lists(WORDS, max_size=3),
    "pod": st.dictionaries(
        st.sampled_from(
            ["search", "ndots", "options", "hosts", "nsswitch_hosts", "env", "changes", "rootfs"]
        ),
        JSON | st.lists(TEXT, max_size=3) | TEXT,
        max_size=4,
    ),
    "nameserver": st.dictionaries(
        st.sampled_from(["kind", "zone", "address", "allow_non_loopback", "engine", "faults", "servers"]),
        JSON | TEXT,
        max_size=4,
    ),
    "load": st.dictionaries(
        st.sampled_from(["users", "duration", "workloads", "shape", "rate", "processes", "batch"]),
        JSON | st.lists(st.dictionaries(st.sampled_from(["label", "query", "kind"]), TEXT), max_size=2),
        max_size=4,
    ),
}
SCENARIO = st.fixed_dictionaries({}, optional=SCENARIO_KEYS)


def toml_value(value: Any) -> str:
    """TOML for a JSON-like value (inline tables); None has no TOML form and becomes an empty table."""
    if value is None:
        return "{}"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return json.dumps(value)


def as_toml(data: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(key)} = {toml_value(value)}\n" for key, value in data.items())


DOCKERFILE = st.lists(
    st.sampled_from(
        ["FROM golang:1.22 AS build", "RUN CGO_ENABLED=1 go build -o /app .", "FROM alpine", "FROM scratch",
         "COPY --from=build /app /app", "ENTRYPOINT [\"/app\"]", "ARG X=:-1:", "RUN \\", "FROM", "USER 0",
         "ENV CGO_ENABLED=0", "RUN go build -tags netgo -ldflags '-extldflags -static' .", "[bold]"]
    ),
    max_size=8,
).map(lambda lines: "\n".join(lines).encode())  # fmt: skip
TRACE = st.lists(
    st.sampled_from(
        ["go package net: confDNS", "go package net: dynamic selection of DNS resolver",
         "go package net: hostLookupOrder(x.test) = cgo", "go package net: using cgo DNS resolver",
         "2024-01-01T00:00:00Z go package net: built with netgo build tag; using Go's DNS resolver", ":-1:"]
    )
    | st.text(max_size=40),
    max_size=8,
).map(lambda lines: "\n".join(lines).encode())  # fmt: skip
ANY_BYTES = st.binary(max_size=600) | st.text(max_size=300).map(str.encode)
CONTENT = {  # each command mostly gets files shaped like its own input, sometimes anything
    "compare": SUMMARY.map(lambda d: json.dumps(d).encode()) | ANY_BYTES,
    "run": SCENARIO.map(lambda d: as_toml(d).encode()) | ANY_BYTES,
    "lint": DOCKERFILE | ANY_BYTES,
    "trace": TRACE | ANY_BYTES,
    "inspect": st.builds(lambda b: b"\x7fELF" + b, st.binary(max_size=600)) | ANY_BYTES,
    "cgo-deps": ANY_BYTES,
}


@contextlib.contextmanager
def workspace(contents: list[bytes]) -> Iterator[list[str]]:
    """Files with these contents (and a directory, and a file under a file), as paths for argv."""
    base = Path(tempfile.mkdtemp(prefix="dp-fuzz-"))
    try:
        paths = []
        for index, content in enumerate(contents):
            path = base / f"f{index}"
            path.write_bytes(content)
            paths.append(str(path))
        paths += [str(base), str(base / "missing"), str(base / "f0" / "under")]
        yield paths
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_cli(argv: list[str]) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(argv)
    return code, err.getvalue()


def check(argv: list[str]) -> None:
    code, err = run_cli(argv)
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)


NOT_THERE = ["/dev/null", "/proc/self/status/x"]  # an --out or --cache that stops the command before work


@pytest.mark.parametrize("command", list(CONTENT))
@FUZZ
@given(
    data=st.data(),
    pick=st.lists(st.integers(0, 1) | st.integers(0, 4), min_size=2, max_size=2),
    flag=st.sampled_from([None, "--json", "--quick"]) | ARG,
    blocked=st.sampled_from(NOT_THERE),
)
def test_commands_on_generated_files_never_trace_back(
    command: str, data: st.DataObject, pick: list[int], flag: str | None, blocked: str
) -> None:
    contents = data.draw(st.lists(CONTENT[command], min_size=2, max_size=2), label="files")
    with workspace(contents) as paths:
        targets = [paths[i] for i in pick]
        argv = [command, *targets[: 2 if command == "compare" else 1]]
        if command == "run":
            argv += ["--out", blocked, "--cache", blocked]
        if command == "cgo-deps":
            argv = [command, paths[-1]]  # never a real module: go list would be the slow part
        check([*argv, flag] if flag is not None else argv)


@FUZZ
@given(
    args=st.lists(ARG, max_size=6), command=st.sampled_from([[], ["run"], ["build"], ["bench"], ["trace"]])
)
def test_generated_arguments_never_trace_back(args: list[str], command: list[str]) -> None:
    if command in (["run"], ["build"]):
        args = [*args, "--cache", "/dev/null", "--out", "/dev/null"] if command == ["run"] else args
        if command == ["build"]:
            args = [*args, "--cache", "/dev/null"]
    check([*command, *args])


@FUZZ
@given(
    which=st.sampled_from(["fidelity", "nameserver", "report"]),
    option=st.sampled_from(
        ["--seconds", "--rounds", "--concurrency", "--users", "--batch", "--mode", "--records"]
    ),
    value=WORDS | TEXT | st.integers(-10, 10).map(str) | st.floats().map(str),
)
def test_bench_options_never_trace_back(which: str, option: str, value: str) -> None:
    """Out of range or of the wrong type: a usage error or one line. A value that is fine is followed by
    one that is not (--rounds 0, or --cache /dev/null), so no bench actually runs."""
    tail = {
        "fidelity": ["--cache", "/dev/null"],
        "nameserver": ["--rounds", "0"],
        "report": ["--records", "0"],
    }
    code, err = run_cli(["bench", which, option, value, *tail[which]])
    assert code == 2, (which, option, value, err)
    assert "Traceback" not in err
