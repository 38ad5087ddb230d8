"""The command line's contract: bad input is one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dnsprobe.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dnsprobe", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_explains_itself() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    assert "resolver mode" in done.stdout
    assert "dnsprobe run" in done.stdout
    done = run_cli("run", "--help")
    assert done.returncode == 0
    assert "--quick" in done.stdout


def test_unknown_scenario_key_exits_2_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    text = (ROOT / "scenarios" / "quickstart.toml").read_text().replace("users = 4", "userz = 4")
    bad.write_text(text)
    done = run_cli("run", str(bad), "--out", str(tmp_path / "runs"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "bad.toml: load.userz: unknown key" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_wrong_type_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "scenarios" / "quickstart.toml").read_text().replace("ndots = 5", 'ndots = "5"'))
    assert main(["run", str(bad)]) == 2


def test_missing_scenario_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "none.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_unknown_mode_for_build_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "gcc"]) == 2
    assert "unknown mode 'gcc'" in capsys.readouterr().err


def test_usage_error_exits_2() -> None:
    assert main(["run", "--no-such-flag"]) == 2


def test_missing_musl_gcc_skips_the_mode_in_one_line(tmp_path: Path) -> None:
    """A PATH with everything /usr/bin has except musl-gcc: the musl mode is skipped with its reason."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(directory).iterdir():
            if tool.name != "musl-gcc" and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    done = subprocess.run(
        [sys.executable, "-m", "dnsprobe", "build", "musl"],
        cwd=ROOT,
        env={"PATH": str(bin_dir), "HOME": str(Path.home()), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stdout
    assert "musl-gcc not found (install Debian's musl-tools: apt-get install musl-tools)" in done.stdout
