"""No input to `inspect`, `lint`, `trace` or `cgo-deps` gives a traceback: random, truncated and
bit-flipped Go binaries, logs, Dockerfiles and Go modules, through the CLI's main(argv), in-process.

Every outcome must be an exit code in {0, 1, 2}; anything else escaping main is a bug (main only
catches DnsProbeError, so a traceback fails the test with its input).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnsprobe import proc
from dnsprobe.build.probe import find_toolchain
from dnsprobe.cli import main

DATA = Path(__file__).parent / "data"
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
LOGS = sorted((DATA / "trace").glob("*.log"))
DOCKERFILES = sorted((DATA / "dockerfiles").glob("*.Dockerfile"))


@pytest.fixture(scope="module")
def go_binaries(tmp_path_factory: pytest.TempPathFactory, probe_cache: Path) -> list[bytes]:
    """A pure-Go binary and a cgo one, built here, as the seeds for damage."""
    root = tmp_path_factory.mktemp("fuzzseed")
    (root / "go.mod").write_text("module example.test/seed\n\ngo 1.21\n")
    (root / "main.go").write_text(
        'package main\n\nimport "net"\n\nfunc main() { _, _ = net.LookupHost("x") }\n'
    )
    toolchain = find_toolchain()
    seeds = []
    for cgo in ("0", "1"):
        out = root / f"seed{cgo}"
        env = toolchain.env(probe_cache) | {"CGO_ENABLED": cgo}
        proc.run([str(toolchain.go), "build", "-ldflags=-s -w", "-o", str(out), "."], env=env, cwd=root)
        seeds.append(out.read_bytes())
    return seeds


def damage(data: bytes, source: st.DataObject) -> bytes:
    """Truncate, flip bits (often in the headers, where parsers trust offsets), or splice garbage."""
    draw = source.draw
    how = draw(st.sampled_from(["truncate", "flip", "flip-headers", "splice"]))
    buf = bytearray(data)
    if how == "truncate":
        return bytes(buf[: draw(st.integers(0, len(buf)))])
    if how == "splice":
        at = draw(st.integers(0, len(buf)))
        return bytes(buf[:at] + draw(st.binary(max_size=256)) + buf[at:])
    limit = min(len(buf), 4096) if how == "flip-headers" else len(buf)
    for _ in range(draw(st.integers(1, 16))):
        if not limit:
            break
        at = draw(st.integers(0, limit - 1))
        buf[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(buf)


def run_on_bytes(command: str, data: bytes, capsys: pytest.CaptureFixture[str], *extra: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input"
        path.write_bytes(data)
        code = main([command, str(path), *extra])
    capsys.readouterr()
    assert code in (0, 1, 2)


@SETTINGS
@given(data=st.data())
def test_inspect_damaged_binaries(
    go_binaries: list[bytes], capsys: pytest.CaptureFixture[str], data: st.DataObject
) -> None:
    seed = data.draw(st.sampled_from(go_binaries))
    run_on_bytes("inspect", damage(seed, data), capsys)


@SETTINGS
@given(blob=st.binary(max_size=4096))
def test_inspect_random_bytes(blob: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    run_on_bytes("inspect", b"\x7fELF" + blob, capsys)


@SETTINGS
@given(data=st.data())
def test_trace_damaged_logs_and_binaries(
    go_binaries: list[bytes], capsys: pytest.CaptureFixture[str], data: st.DataObject
) -> None:
    seeds = [path.read_bytes() for path in LOGS] + [go_binaries[0][:65536]]
    run_on_bytes("trace", damage(data.draw(st.sampled_from(seeds)), data), capsys, "--json")


@SETTINGS
@given(text=st.text(max_size=2000))
def test_trace_random_text(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    run_on_bytes("trace", text.encode("utf-8", "surrogatepass"), capsys)


@SETTINGS
@given(data=st.data())
def test_lint_damaged_dockerfiles(capsys: pytest.CaptureFixture[str], data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(DOCKERFILES)).read_bytes()
    run_on_bytes("lint", damage(seed, data), capsys, "--json")


@SETTINGS
@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "FROM golang:1.22 AS b",
                    "FROM --platform=$BUILDPLATFORM golang:1.19-alpine",
                    "FROM ${X}",
                    "ARG X",
                    "RUN <<EOF",
                    "RUN <<-'E'",
                    "EOF",
                    "RUN CGO_ENABLED=1 go build -ldflags '-extldflags -static' -o /app .",
                    "RUN export CGO_ENABLED=0 && go build -o=/x ./... | tee",
                    "COPY --from=b /app /app",
                    "USER 0",
                    'RUN go build -o "/a b" -ldflags="-linkmode external',
                    "FROM scratch",
                ]
            ),
            st.text(max_size=80),
        ),
        max_size=30,
    )
)
def test_lint_random_dockerfiles(lines: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    run_on_bytes("lint", "\n".join(lines).encode("utf-8", "surrogatepass"), capsys)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(go_mod=st.text(max_size=200), main_go=st.text(max_size=200), tags=st.text(max_size=20))
def test_cgo_deps_random_modules(
    go_mod: str, main_go: str, tags: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "go.mod").write_text(go_mod, encoding="utf-8", errors="replace")
        (root / "main.go").write_text(main_go, encoding="utf-8", errors="replace")
        extra = ["--tags", tags] if tags else []
        code = main(["cgo-deps", str(root), *extra])
    capsys.readouterr()
    assert code in (0, 1, 2)
