"""`dnsprobe run` on the docker backend: the cgo probe across the five stand-in bases, end to end."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from dnsprobe.cli import main
from dnsprobe.dockerengine import connect
from dnsprobe.errors import DockerError
from dnsprobe.scenario import parse_scenario

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


def test_cgo_matrix_run(tmp_path: Path, probe_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        connect(timeout=30).close()
    except DockerError as exc:
        pytest.skip(str(exc))
    data = tomllib.loads((ROOT / "scenarios" / "base-images.toml").read_text())
    data["modes"] = ["cgo"]
    data["load"]["quick_duration"] = 1
    scenario = tmp_path / "cgo-matrix.toml"
    parse_scenario(data)  # still a valid scenario after the edit
    lines = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for table in ("pod", "load", "expect", "nameserver"):
        body = {k: v for k, v in data[table].items() if k != "workloads"}
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in body.items()]
    for workload in data["load"]["workloads"]:
        lines.append("[[load.workloads]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in workload.items()]
    scenario.write_text("\n".join(lines) + "\n")
    code = main(
        ["run", str(scenario), "--quick", "--out", str(tmp_path / "runs"), "--cache", str(probe_cache)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["backend"] == "docker"
    cells = {m["mode"]: m for m in summary["modes"]}
    assert set(cells) == {f"cgo+{b}" for b in data["base_images"]}
    for base in ("scratch", "distroless-static", "alpine"):
        cell = cells[f"cgo+{base}"]
        assert cell["status"] == "start_failure"
        assert cell["reason"] == "exec /app: no such file or directory"
        assert cell["lookups"] == cell["ok"] + sum(cell["failures"].values())
    for base in ("distroless-base", "debian-slim"):
        cell = cells[f"cgo+{base}"]
        assert cell["status"] == "ran"
        assert cell["resolver"] == "cgo"
        assert cell["ok"] > 0
        assert cell["standin"]["image"].startswith("dnsprobe-standin/")
    report = (run_dir / "report.md").read_text()
    assert "exec /app: no such file or directory" in report
    assert "stand-in for alpine:3.20" in report


def test_resolv_conf_change_reaches_a_container(
    tmp_path: Path, probe_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`[[pod.changes]]` on the docker backend: the bind-mounted resolv.conf is rewritten in place, so the
    Go probe in the container stops walking the search list within its 5 s re-read (catalog 15)."""
    try:
        connect(timeout=30).close()
    except DockerError as exc:
        pytest.skip(str(exc))
    catalog = (ROOT / "scenarios" / "catalog" / "15-resolv-conf-changed.toml").read_text()
    zone = catalog[catalog.index("[nameserver]") :]
    scenario = tmp_path / "changed.toml"
    scenario.write_text(
        'name = "docker-resolv-changed"\nmodes = ["go"]\nbackend = "docker"\n'
        'base_images = ["distroless-static"]\n'
        "[pod]\nndots = 5\n[[pod.changes]]\nat_s = 2\nndots = 1\n"
        "[load]\nusers = 2\nduration = 9\nquick_duration = 9\nbatch = 20\nconcurrency = 4\n"
        '[[load.workloads]]\nlabel = "external"\nquery = "{rand}.api.example.test"\n' + zone
    )
    code = main(
        ["run", str(scenario), "--quick", "--out", str(tmp_path / "runs"), "--cache", str(probe_cache)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    (cell,) = summary["modes"]
    assert cell["status"] == "ran" and not cell.get("incidents"), cell.get("incidents")
    assert cell["ok"] > 0 and cell["ok"] == cell["lookups"]
    walked = cell["search_walk_after_change_s"]
    assert walked is not None and walked <= 5.5, walked  # Go's re-read saw the rewritten file
    assert cell["wire"]["queries"] / cell["lookups"] < 7.8  # 8 per lookup before the change, 2 after
