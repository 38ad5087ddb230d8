"""The package is self-contained: bundled scenarios by name, command-line overrides, and a real wheel
installed into a fresh venv that builds its probes and runs the quickstart from an empty directory."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

from dnsprobe.bundled import bundled_scenarios, probe_source_dir, resolve_scenario, scenarios_dir
from dnsprobe.durations import parse_duration
from dnsprobe.errors import ScenarioError
from dnsprobe.overrides import Overrides
from dnsprobe.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def test_a_checkout_reads_its_own_folders() -> None:
    assert probe_source_dir() == ROOT / "go_probe"
    assert scenarios_dir() == ROOT / "scenarios"


def test_every_scenario_file_is_listed_with_its_description() -> None:
    listed = {s.path for s in bundled_scenarios()}
    on_disk = set((ROOT / "scenarios").glob("*.toml")) | set((ROOT / "scenarios" / "catalog").glob("*.toml"))
    assert listed == on_disk
    for scenario in bundled_scenarios():
        description = tomllib.loads(scenario.path.read_text())["description"]
        assert scenario.description == description.strip()


@pytest.mark.parametrize(
    "argument", ["06-total-outage", "catalog/06-total-outage", "06-total-outage.toml", "06"]
)
def test_a_bundled_name_resolves_to_its_file(argument: str) -> None:
    assert resolve_scenario(argument) == ROOT / "scenarios" / "catalog" / "06-total-outage.toml"


def test_no_argument_is_the_quickstart_and_a_path_is_itself(tmp_path: Path) -> None:
    assert resolve_scenario(None) == ROOT / "scenarios" / "quickstart.toml"
    mine = tmp_path / "06-total-outage"
    mine.write_text("")
    assert resolve_scenario(mine) == mine


def test_an_unknown_name_says_how_to_list_the_bundled_ones() -> None:
    with pytest.raises(ScenarioError, match="dnsprobe scenarios"):
        resolve_scenario("07-nope")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30", 30), ("30s", 30), ("1.5m", 90), ("1h30m", 5400), ("500ms", 0.5), (7, 7)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "5q", "1h 30x", "-3s", "30s5"])
def test_bad_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_overrides_are_validated_like_the_file() -> None:
    quickstart = ROOT / "scenarios" / "quickstart.toml"
    overrides = Overrides.from_options(
        modes="go,musl", duration="2m", users=8, sets=["load.batch=50", "nameserver.engine=python"]
    )
    scenario = load_scenario(quickstart, overrides)
    assert scenario.modes == ["go", "musl"]
    assert scenario.load.duration == 120
    assert scenario.load.users == 8
    assert scenario.load.batch == 50
    assert scenario.nameserver.engine == "python"
    with pytest.raises(ScenarioError, match=r"load\.batch: expected an integer"):
        load_scenario(quickstart, Overrides(sets=["load.batch=many"]))
    with pytest.raises(ScenarioError, match=r"load\.bogus: unknown key"):
        load_scenario(quickstart, Overrides(sets=["load.bogus=1"]))
    with pytest.raises(ScenarioError, match="expected KEY=VALUE"):
        load_scenario(quickstart, Overrides(sets=["load.batch"]))
    with pytest.raises(ScenarioError, match=r"modes: .*nosuch"):
        load_scenario(quickstart, Overrides(modes=["go", "nosuch"]))


def test_modes_override_drops_the_other_modes_checks() -> None:
    scenario = load_scenario(
        ROOT / "scenarios" / "catalog" / "06-total-outage.toml",
        Overrides.from_options(modes="musl", duration=None, users=None, sets=None),
    )
    assert scenario.modes == ["musl"]
    assert scenario.behaviour
    assert all(b.modes == ["musl"] for b in scenario.behaviour)


def test_a_list_entry_can_be_set() -> None:
    scenario = load_scenario(
        ROOT / "scenarios" / "catalog" / "09-servfail-storm.toml",
        Overrides(sets=["nameserver.faults[0].probability=0.5"]),
    )
    assert scenario.nameserver.faults[0].probability == 0.5
    with pytest.raises(ScenarioError, match=r"has no entry \[7\]"):
        load_scenario(ROOT / "scenarios" / "quickstart.toml", Overrides(sets=["load.workloads[7].weight=2"]))


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_works_from_an_empty_directory(
    tmp_path: Path, probe_cache: Path
) -> None:
    """No editable install and no checkout on the path: the wheel alone builds the probes and runs the
    bundled quickstart (the build cache is shared, so probes built earlier are reused)."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("dnsprobe-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    dnsprobe = str(env_dir / "bin" / "dnsprobe")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [dnsprobe, *args], cwd=empty, env=env, capture_output=True, text=True, timeout=900, check=False
        )

    where = subprocess.run(
        [
            str(python),
            "-c",
            "import dnsprobe, dnsprobe.bundled as b; print(dnsprobe.__file__, b.probe_source_dir())",
        ],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(ROOT) not in where, where
    assert "site-packages" in where and "_bundled" in where

    built = cli("build", "go", "--cache", str(probe_cache))
    assert built.returncode == 0, built.stderr
    assert "static" in built.stdout
    listed = cli("scenarios")
    assert "06-total-outage" in listed.stdout
    done = cli("run", "--quick", "--modes", "go,cgo", "--cache", str(probe_cache))
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (empty / "runs").iterdir()
    assert (run_dir / "report.html").exists()
    assert (run_dir / "summary.json").exists()


def test_the_readmes_scenario_reference_is_the_models() -> None:
    """The README's table is generated: regenerate it with `dnsprobe schema scenario --markdown`."""
    from dnsprobe.scenario_reference import BEGIN, END, markdown_reference

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index(BEGIN) + len(BEGIN) : readme.index(END)].strip("\n")
    assert table == markdown_reference().strip("\n")
