"""Bad input and faults end in one line and exit 2, never a traceback: unusable --out and --cache
directories, a full disk, unbounded files, deep nesting, a summary.json with wrong types, options out of
range, user text with emoji codes or markup; and a Ctrl-C while a zone is parsed stays an interrupt."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from dnsprobe.cli import main
from dnsprobe.codec.zone import Zone
from dnsprobe.tools.compare import compare_runs

ROOT = Path(__file__).resolve().parent.parent
DNSPROBE = Path(sys.executable).with_name("dnsprobe")
QUICKSTART = str(ROOT / "scenarios" / "quickstart.toml")


def one_line(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 2) -> str:
    """Run the CLI in-process; it must exit `code` with exactly one line on stderr, returned."""
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dnsprobe: error: "), err
    return err


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "plain-file"
    path.write_text("x")
    return path


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("FILE", "is not a directory"),
        ("/dev/null", "is not a directory"),
        ("FILE/below", "a part of the path is a file"),
        ("TMP/" + "n" * 300, "a name in the path is too long"),
        ("TMP/" + "d/" * 2100, "path too long"),
        ("/proc/self/nope", "cannot write there"),
    ],
)
@pytest.mark.parametrize("option", ["--out", "--cache"])
def test_unusable_directories_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, a_file: Path, where: str, words: str, option: str
) -> None:
    path = where.replace("FILE", str(a_file)).replace("TMP", str(tmp_path))
    other = "--cache" if option == "--out" else "--out"
    err = one_line(capsys, ["run", QUICKSTART, option, path, other, str(tmp_path / "fine")])
    assert f"{option} " in err and words in err


def test_build_checks_its_cache_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--cache /dev/null: is not a directory" in one_line(
        capsys, ["build", "go", "--cache", "/dev/null"]
    )


def in_user_namespace(script: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("unshare") is None:
        pytest.skip("unshare not found (apt-get install util-linux)")
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-ec", script],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )


def test_a_read_only_out_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir()
    done = in_user_namespace(
        f"mount --bind {tmp_path}/ro {tmp_path}/ro; mount -o remount,bind,ro {tmp_path}/ro; "
        f"exec {DNSPROBE} run {QUICKSTART} --out {tmp_path}/ro/runs"
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"dnsprobe: error: --out {tmp_path}/ro/runs: cannot write there: read-only file system; "
        "give a writable directory"
    )


SMALL = """
name = "full"
modes = ["go"]
[load]
users = 2
duration = 3
quick_duration = 3
batch = 100
concurrency = 4
[[load.workloads]]
label = "svc"
query = "{rand}.web"
[nameserver]
zone = "*.web.default.svc.cluster.local. 30 A 10.96.0.10"
"""


@pytest.mark.slow
def test_a_full_disk_is_one_line_that_says_where_the_records_are(tmp_path: Path) -> None:
    """A real run on a 256 KiB tmpfs (in a mount namespace of its own): it fills up during the load."""
    scenario = tmp_path / "full.toml"
    scenario.write_text(SMALL)
    disk = tmp_path / "disk"
    disk.mkdir()
    done = in_user_namespace(
        f"mount -t tmpfs -o size=256k tmpfs {disk}; "
        f"{DNSPROBE} run {scenario} --out {disk}/runs --quick 2>{tmp_path}/err || echo rc=$?; "
        f"ls {disk}/runs"
    )
    err = (tmp_path / "err").read_text().strip().splitlines()[-1]
    assert "rc=2" in done.stdout, done.stdout + done.stderr
    assert "Traceback" not in (tmp_path / "err").read_text()
    (run_id,) = [line for line in done.stdout.splitlines() if line.endswith("-full")]
    assert err.startswith("dnsprobe: error: no space left on the device writing "), err
    assert f"every lookup recorded so far is in {disk}/runs/{run_id}/records.sqlite" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["run", "/dev/zero"], "larger than 64 MiB, the limit for a scenario"),
        (["lint", "/dev/zero"], "the limit for a Dockerfile"),
        (["inspect", "/dev/zero"], "not a regular file; a binary is one"),
        (["compare", "/dev/zero", "/dev/zero"], "the limit for a summary.json"),
        (["run", "/tmp"], "is a directory"),
        (["trace", "/tmp"], "/tmp: a directory without probe.stderr"),
    ],
)
def test_unbounded_files_are_read_with_a_limit(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert words in one_line(capsys, argv)


def test_deep_nesting_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 2000 + "]" * 2000 + "\n")
    assert "nested too deeply" in one_line(capsys, ["run", str(deep)])
    summary = tmp_path / "summary.json"
    summary.write_text('{"modes": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "nested too deeply" in one_line(capsys, ["compare", str(summary), str(summary)])


def mode(name: str, **kw: Any) -> dict[str, Any]:
    m = {"mode": name, "status": "ran", "resolver": "go", "lookups": 1000, "ok": 1000, "failures": {}}
    return {**m, "latency_ms": {"p50": 1.0, "p99": 2.0}, "wire_queries_per_lookup": 2.0, **kw}


def summary(tmp: Path, name: str, modes: list[Any], **top: Any) -> Path:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps({"run_id": name, "scenario": "quickstart", "modes": modes, **top}))
    return path


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("go", "modes[0]"),
        (mode("go", latency_ms=5), "modes[0].latency_ms"),
        (mode("go", latency_ms={"p99": "slow"}), "modes[0].latency_ms.p99"),
        (mode("go", lookups="many"), "modes[0].lookups"),
        (mode("go", lookups=True), "modes[0].lookups"),
        (mode("go", lookups=-5, ok=-10), "modes[0].lookups"),
        (mode("go", ok=2000), "modes[0].ok"),
        (mode("go", status=["ran"]), "modes[0].status"),
        (mode("go", mode=7), "modes[0].mode"),
        (mode("go", wire_queries_per_lookup=float("nan")), "modes[0].wire_queries_per_lookup"),
        ({"status": "ran"}, "modes[0]"),
    ],
)
def test_compare_refuses_wrong_types_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, entry: Any, field: str
) -> None:
    good = summary(tmp_path, "a", [mode("go")])
    bad = summary(tmp_path, "b", [entry])
    err = one_line(capsys, ["compare", str(good), str(bad)])
    assert f"{bad}: {field}" in err
    err = one_line(capsys, ["compare", str(bad), str(good)])
    assert f"{bad}: {field}" in err


def test_compare_says_a_run_was_interrupted_and_flags_no_missing_mode(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    full = summary(tmp_path, "a", [mode("go"), mode("cgo"), mode("musl")], interrupted=False, finished=True)
    cut = summary(
        tmp_path, "b", [mode("go"), mode("cgo", status="pending", lookups=0, ok=0)], interrupted=True
    )
    diffs = compare_runs(full, cut)
    assert not any(d.regression for d in diffs)
    assert [(d.mode, d.what, d.b) for d in diffs] == [
        ("(run)", "run", "interrupted"),
        ("cgo", "mode", "not run (B was interrupted)"),
        ("musl", "mode", "not run (B was interrupted)"),
    ]
    assert main(["compare", str(full), str(cut)]) == 0
    text = capsys.readouterr().out
    assert "B was interrupted: the figures cover what was measured before the stop" in text
    assert "REGRESSION" not in text and "0 regressions" in text
    # the same mode missing from a run that finished is still a regression
    finished = summary(tmp_path, "c", [mode("go")], interrupted=False, finished=True)
    assert [(d.mode, d.regression) for d in compare_runs(full, finished)] == [("cgo", True), ("musl", True)]


def test_compare_names_runs_of_different_scenarios(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a = summary(tmp_path, "a", [mode("go")])
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"scenario": "ndots-amplification", "modes": [mode("go")]}))
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "A and B ran different scenarios (quickstart and ndots-amplification)" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["bench", "fidelity", "--seconds", "0"], "--seconds 0: give a number of seconds above 0"),
        (["bench", "fidelity", "--mode", "nope"], "--mode nope: unknown mode 'nope'"),
        (["bench", "nameserver", "--seconds", "-1"], "--seconds -1"),
        (["bench", "nameserver", "--engine", "rust"], "--engine rust: not an engine"),
    ],
)
def test_bench_options_out_of_range_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert words in one_line(capsys, argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "fidelity", "--concurrency", "0"],
        ["bench", "fidelity", "--seconds", "nan"],
        ["bench", "fidelity", "--users", "-1"],
        ["bench", "fidelity", "--batch", "0"],
        ["bench", "fidelity", "--rounds", "0"],
        ["bench", "nameserver", "--rounds", "0"],
        ["bench", "report", "--records", "0"],
        ["serve", QUICKSTART, "--port", "70000"],
    ],
)
def test_bench_options_out_of_range_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """Ranges typer checks itself: a usage error (exit 2) naming the option, before any work."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert argv[2] in err and "Traceback" not in err


def test_user_text_is_printed_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    """No emoji codes (`:-1:` is not a thumbs-down) and no markup (`[bold]` stays) in user data."""
    err = one_line(capsys, ["trace", ":-1:[bold]x:thumbs_up:"])
    assert err.startswith("dnsprobe: error: :-1:[bold]x:thumbs_up:: no such file")


def test_the_loopback_refusal_points_at_the_scenario_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "ext.toml"
    path.write_text(
        'name = "t"\n[nameserver]\nkind = "external"\naddress = "192.0.2.53"\n'
        '[load]\nworkloads = [{label = "a", query = "{rand}.example.test"}]\n'
    )
    err = one_line(capsys, ["run", str(path)])
    assert "allow_non_loopback = true in [nameserver]" in err and "--allow-non-loopback" not in err


def test_ctrl_c_while_a_large_zone_is_parsed_is_an_interrupt() -> None:
    """dnspython wraps whatever is raised inside rdata parsing in a SyntaxError, KeyboardInterrupt too:
    interrupted at 20 moments of a parse spent mostly in rdata parsing, each one is an interrupt."""
    strings = " ".join(f'"{"x" * 100}"' for _ in range(10))
    text = "".join(f"h{i}.example.test. 30 IN TXT {strings}\n" for i in range(2_000))

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    outcomes = []
    try:
        for moment in range(20):
            signal.setitimer(signal.ITIMER_REAL, 0.05 + moment * 0.037)
            try:
                Zone.from_text(text)
                outcomes.append("finished")
            except KeyboardInterrupt:
                outcomes.append("interrupt")
            except Exception as exc:  # the bug: "syntax error in the zone"
                outcomes.append(f"{type(exc).__name__}: {exc}"[:80])
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert set(outcomes) <= {"interrupt", "finished"}, outcomes
    assert "interrupt" in outcomes


def test_bench_report_keep_that_is_not_a_directory(capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line(capsys, ["bench", "report", "--records", "10", "--keep", "/dev/null"])
    assert "--keep /dev/null: is not a directory" in err


@pytest.mark.parametrize("engine", ["go", "python"])
def test_serve_with_a_query_log_on_a_full_device_is_one_line(engine: str) -> None:
    done = subprocess.run(
        [DNSPROBE, "serve", QUICKSTART, "--port", "0", "--engine", engine, "--querylog", "/dev/full"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "no space left on the device" in done.stderr, done.stderr


def test_inspect_of_a_pipe_nobody_writes_to_does_not_wait(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "not a regular file; a binary is one" in one_line(capsys, ["inspect", str(fifo)])
