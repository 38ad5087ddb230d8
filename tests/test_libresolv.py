"""Catalog 41, libresolv on the wrong base: the cgo-libresolv build (real Go builds, the shipped release
and a pinned one), the musl-libc6-compat root (musl's loader behind libc6-compat's glibc names, in a
real pod), and what `inspect` and `lint` say about such a binary on Alpine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dnsprobe.binary.bases import LIBC6_COMPAT_LIBS, LIBC6_COMPAT_LOADER, MUSL_LOADER
from dnsprobe.binary.inspection import inspect_binary
from dnsprobe.build.probe import build_probe, find_toolchain, needed_libraries
from dnsprobe.modes import MODES, resolve_mode
from dnsprobe.probe_client import ProbeClient
from dnsprobe.proc import run_plain
from dnsprobe.sandbox import Pod, PodStartFailure, render_pod_files
from dnsprobe.scenario import Pod as PodSpec
from dnsprobe.tools.lint import lint_text

ZONE = "*.example.test. 30 IN A 192.0.2.1\n*.example.test. 30 IN AAAA 2001:db8::1\n"
LIBRESOLV = "libresolv.so.2"


def _links_as_needed() -> bool:
    """Whether this host's gcc drops libraries nothing uses (Debian's and Ubuntu's gcc spec does)."""
    done = run_plain(["gcc", "-dumpspecs"])
    return bool(re.search(r"%\{!fsanitize=\*:--as-needed\}|\s--as-needed\s", done.stdout))


def _libc_has_res_search() -> bool:
    """glibc 2.34 moved res_search into libc.so.6 (before, it was only in libresolv)."""
    for directory in ("/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64"):
        libc = Path(directory) / "libc.so.6"
        if libc.exists():
            return b"res_search" in libc.read_bytes()
    return False


def test_cgo_libresolv_needs_libresolv(probe_cache: Path) -> None:
    binary = build_probe(MODES["cgo-libresolv"], cache_dir=probe_cache)
    needed = needed_libraries(binary.path)
    assert LIBRESOLV in needed and "libc.so.6" in needed
    assert binary.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert binary.path != build_probe(MODES["cgo"], cache_dir=probe_cache).path  # its own cache key


def test_the_plain_cgo_build_keeps_libresolv_only_where_it_is_needed(probe_cache: Path) -> None:
    """net's `#cgo LDFLAGS: -lresolv` is on every Go 1.20+ cgo build (the toolchain's own source says
    so), but with --as-needed and res_search in libc.so.6 (glibc 2.34+) the linker drops it."""
    toolchain = find_toolchain()
    res = (toolchain.goroot / "src" / "net" / "cgo_unix_cgo_res.go").read_text()
    assert "LDFLAGS: -lresolv" in res and "linux" in res.split("package net")[0]
    needed = needed_libraries(build_probe(MODES["cgo"], cache_dir=probe_cache).path)
    dropped = _links_as_needed() and _libc_has_res_search()
    assert (LIBRESOLV not in needed) == dropped, (needed, "as-needed", _links_as_needed())


@pytest.mark.slow
def test_pinned_release_links_libresolv_too(probe_cache: Path) -> None:
    binary = build_probe(resolve_mode("cgo-libresolv@1.22.10"), cache_dir=probe_cache)
    assert binary.toolchain == "go1.22.10"
    assert LIBRESOLV in needed_libraries(binary.path)


def _pod(tmp_path: Path, probe_cache: Path, mode: str) -> Pod:
    spec = PodSpec(search=[], ndots=1, rootfs="musl-libc6-compat")
    (tmp_path / "s").mkdir(exist_ok=True)
    return Pod(
        mode=mode,
        binary=build_probe(MODES[mode], cache_dir=probe_cache).path,
        files=render_pod_files(spec, hostname="probe", nameservers=["127.0.0.1"]),
        zone_text=ZONE,
        workdir=tmp_path / "pod",
        socket_dir=tmp_path / "s",
        godebug=MODES[mode].godebug,
        rootfs=spec.rootfs,
    )


def _need_musl_loader() -> None:
    if not Path(MUSL_LOADER).exists():
        pytest.skip(f"{MUSL_LOADER} not found (apt-get install musl-tools)")


@pytest.mark.musl
def test_a_libresolv_binary_does_not_start_on_libc6_compat(tmp_path: Path, probe_cache: Path) -> None:
    _need_musl_loader()
    with pytest.raises(PodStartFailure) as failed, _pod(tmp_path, probe_cache, "cgo-libresolv"):
        pass
    assert "Error loading shared library libresolv.so.2: No such file or directory" in failed.value.text


@pytest.mark.musl
def test_libc6_compat_root_runs_glibc_names_on_musl(tmp_path: Path, probe_cache: Path) -> None:
    """The root is musl's loader plus libc6-compat's symlinks; a glibc cgo binary that needs only
    libc.so.6 starts there and resolves through musl's getaddrinfo."""
    _need_musl_loader()
    if LIBRESOLV in needed_libraries(build_probe(MODES["cgo"], cache_dir=probe_cache).path):
        pytest.skip("this host's cgo build keeps libresolv.so.2 (no --as-needed or glibc < 2.34)")
    with _pod(tmp_path, probe_cache, "cgo") as pod:
        root = Path(f"/proc/{pod.info['pid']}/root")
        links = {name: str((root / "lib" / name).readlink()) for name in LIBC6_COMPAT_LIBS}
        loader = str((root / LIBC6_COMPAT_LOADER.lstrip("/")).readlink())
        lib64 = str((root / "lib64").readlink())
        has_libresolv = (root / "lib" / LIBRESOLV).exists()
        client = ProbeClient(pod.address)
        results = client.batch(
            kind="host", name="{rand}.example.test.", count=10, concurrency=2, timeout_ms=5000
        )
        client.close()
        trace = pod.trace_path.read_text(errors="replace")
    assert set(links.values()) == {"/lib/libc.musl-x86_64.so.1"} and loader == "/lib/libc.musl-x86_64.so.1"
    assert lib64 == "lib" and not has_libresolv
    assert [r.outcome for r in results] == ["ok"] * 10, results[:2]
    assert "= cgo" in trace, trace[-500:]


def test_inspect_says_libc6_compat_does_not_help(probe_cache: Path) -> None:
    report = inspect_binary(build_probe(MODES["cgo-libresolv"], cache_dir=probe_cache).path)
    alpine = next(v for v in report.verdicts if v.base == "alpine")
    assert alpine.status == "will_not_start"
    assert "with libc6-compat it still does not start" in alpine.why
    assert "Error loading shared library libresolv.so.2" in alpine.why
    plain = inspect_binary(build_probe(MODES["cgo"], cache_dir=probe_cache).path)
    why = next(v for v in plain.verdicts if v.base == "alpine").why
    assert ("still does not start" in why) == (LIBRESOLV in plain.elf.needed)


DOCKERFILE = """FROM {builder} AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=1 go build -o /app .
FROM alpine:3.20
RUN apk add --no-cache libc6-compat
COPY --from=build /app /app
ENTRYPOINT ["/app"]
"""


@pytest.mark.parametrize(
    ("builder", "code", "severity"),
    [
        ("golang:1.21-bullseye", "libresolv-on-libc6-compat", "error"),  # glibc 2.31: libresolv kept
        ("golang:1.22-bookworm", "glibc-binary-on-libc6-compat", "warning"),  # glibc 2.36
        ("golang:1.19-bullseye", "glibc-binary-on-libc6-compat", "warning"),  # before -lresolv
    ],
)
def test_lint_names_libresolv_on_libc6_compat(builder: str, code: str, severity: str) -> None:
    result = lint_text(DOCKERFILE.format(builder=builder).encode())
    found = {f.code: f for f in result.findings}
    assert code in found and found[code].severity == severity
    assert "glibc-binary-on-musl" not in found  # the loader is there now: not `exec /app: no such file`
    without = lint_text(DOCKERFILE.format(builder=builder).replace("libc6-compat", "tzdata").encode())
    assert "glibc-binary-on-musl" in {f.code for f in without.findings}
