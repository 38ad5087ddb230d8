"""The failure-mode catalog: every scenario in scenarios/catalog/ reproduces its failure with real probes
and passes its own checks (what each resolver is documented, and was measured here, to do)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dnsprobe.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
CATALOG = sorted((ROOT / "scenarios" / "catalog").glob("*.toml"))

pytestmark = pytest.mark.slow


def test_catalog_covers_every_known_failure_mode() -> None:
    numbers = sorted(load_scenario(path).failure_mode.number for path in CATALOG)  # type: ignore[union-attr]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 30


def test_readme_catalog_table_lists_every_scenario() -> None:
    """The README's catalog table has one row per scenario, in order, numbered as the scenario says."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## The failure-mode catalog", 1)[1].split("\n\n| # |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| ") and "`" in line]
    listed = [(int(number), cell.strip().strip("`")) for number, cell in rows]
    expected = [(load_scenario(p).failure_mode.number, p.stem) for p in CATALOG]  # type: ignore[union-attr]
    assert listed == expected
    assert f"The whole catalog ({len(CATALOG)} scenarios)" in readme


@pytest.mark.parametrize("path", CATALOG, ids=[p.stem for p in CATALOG])
def test_scenario_reproduces_its_failure_mode(path: Path, tmp_path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.failure_mode is not None and scenario.behaviour, "a catalog scenario documents itself"
    done = subprocess.run(
        [sys.executable, "-m", "dnsprobe", "run", str(path), "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    failed = [f"{c['name']}: {c['detail']}" for c in summary["checks"] if not c["passed"]]
    assert not failed, "\n".join(failed)
    assert done.returncode == 0, done.stderr[-2000:]
    assert summary["failure_mode"]["number"] == scenario.failure_mode.number
    behaviour_checks = [
        c for c in summary["checks"] if any(b.why and b.why in c["name"] for b in scenario.behaviour)
    ]
    assert len(behaviour_checks) == sum(len(b.modes) for b in scenario.behaviour)
    for m in summary["modes"]:
        assert m["lookups"] == m["ok"] + sum(m["failures"].values())
