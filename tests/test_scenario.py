from __future__ import annotations

from pathlib import Path

import pytest

from dnsprobe.errors import ScenarioError
from dnsprobe.scenario import load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parent.parent
ZONE = "example.test. 30 IN A 192.0.2.1\n"


def minimal(**over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "t",
        "nameserver": {"zone": ZONE},
        "load": {"workloads": [{"label": "a", "query": "{rand}.example.test"}]},
    }
    data.update(over)
    return data


def test_quickstart_is_valid() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.toml")
    assert scenario.name == "quickstart"
    assert {"go", "cgo", "musl"} <= set(scenario.modes)
    assert scenario.pod.ndots == 5
    assert scenario.load_seconds(quick=True) < scenario.load_seconds(quick=False)


def test_defaults_are_a_kubernetes_pod() -> None:
    scenario = parse_scenario(minimal())
    assert scenario.pod.search == ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert scenario.pod.ndots == 5


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (minimal(lod={}), "lod", "unknown key"),
        (minimal(load={"users": "many", "workloads": []}), "load.users", "expected an integer, got 'many'"),
        (
            minimal(load={"workloads": [{"label": "a", "query": "x", "kindd": "host"}]}),
            "load.workloads[0].kindd",
            "unknown key",
        ),
        (minimal(modes=["go", "gcc"]), "modes", "unknown mode 'gcc'"),
        (minimal(pod={"ndots": 50}), "pod.ndots", "less than or equal to 15"),
        (
            minimal(load={"workloads": [{"label": "a", "query": "{random}.x"}]}),
            "load.workloads[0].query",
            "unknown placeholder {random}",
        ),
        (minimal(nameserver={"zone": "example.test. 30 IN A not-an-address\n"}), "nameserver.zone", "line 1"),
        ({"name": "t", "load": {"workloads": [{"label": "a", "query": "x"}]}}, "nameserver", "missing"),
    ],
)
def test_bad_input_names_file_and_field(data: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, source="bad.toml")
    assert caught.value.field == field
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"bad.toml: {field}: ")
    assert "\n" not in str(caught.value)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\nload = {\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"broken.toml: not valid TOML: .*line 2"):
        load_scenario(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "nope.toml")
