"""The run summary's model: the one writer and reader of summary.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dnsprobe.cli import main
from dnsprobe.summary import SCHEMA_VERSION, SummaryError, json_schema, read_summary, write_summary

# A summary as the first wave wrote it: no schema_version, checks without a mode.
FIRST_WAVE: dict[str, Any] = {
    "run_id": "20261101-120000-quickstart",
    "scenario": "quickstart",
    "started_at": "2026-11-01T12:00:00+00:00",
    "finished_at": "2026-11-01T12:01:00+00:00",
    "finished": True,
    "interrupted": False,
    "modes": [
        {
            "mode": "go",
            "status": "ran",
            "resolver": "go",
            "lookups": 100,
            "ok": 97,
            "failures": {"timeout": 3},
            "lookups_per_s": 50.0,
            "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 5.0, "max": 9.0},
            "wire_queries_per_lookup": 2.0,
            "timeline": {"t": [0, 1]},
        }
    ],
    "checks": [{"name": "go: resolver is go", "passed": True, "detail": "the trace shows go"}],
}


def test_a_first_wave_summary_loads_with_every_key_kept(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(FIRST_WAVE))
    summary = read_summary(tmp_path)
    assert summary.schema_version == 1
    assert summary.modes[0].failures == {"timeout": 3}
    assert summary.modes[0].latency_ms.p99 == 5.0
    assert summary.checks[0].mode is None
    assert summary.to_json()["modes"][0]["timeline"] == {"t": [0, 1]}  # unknown keys survive


def test_written_summaries_carry_the_version_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_summary(path, FIRST_WAVE)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert read_summary(path).to_json() == data


def test_the_accounting_identity_is_refused_when_broken(tmp_path: Path) -> None:
    broken = json.loads(json.dumps(FIRST_WAVE))
    broken["modes"][0]["ok"] = 99
    with pytest.raises(SummaryError, match=r"modes\.0: .*accounting identity"):
        write_summary(tmp_path / "summary.json", broken)
    assert not (tmp_path / "summary.json").exists()


def test_a_summary_without_the_contracts_keys_is_never_written(tmp_path: Path) -> None:
    partial = {k: v for k, v in FIRST_WAVE.items() if k != "started_at"}
    with pytest.raises(ValueError, match="started_at"):
        write_summary(tmp_path / "summary.json", partial)


@pytest.mark.parametrize("text", ["[]", "{", '{"modes": 3}', '{"modes": [{"lookups": 1}]}'])
def test_bad_summaries_are_one_line(tmp_path: Path, text: str) -> None:
    (tmp_path / "summary.json").write_text(text)
    with pytest.raises(SummaryError):
        read_summary(tmp_path)


def test_schema_summary_prints_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "summary"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(schema["required"]) >= {"run_id", "scenario", "started_at", "finished", "modes", "checks"}
    mode = schema["$defs"]["ModeResult"]["properties"]
    assert {"lookups", "ok", "failures", "latency_ms", "wire_queries_per_lookup"} <= set(mode)
    assert schema == json_schema()


def test_schema_scenario_prints_every_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "scenario"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"modes", "pod", "nameserver", "load"} <= set(schema["properties"])
