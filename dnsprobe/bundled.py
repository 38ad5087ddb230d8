"""What ships with dnsprobe besides its Python code: the probe's Go source and the scenarios.

There is one source of truth for each, the top-level `go_probe/` and `scenarios/` folders of the source
tree. Running from a checkout (or an editable install) reads them there; a built wheel carries copies
under `dnsprobe/_bundled/`, made from those same folders by the build step in `setup.py`. So
`pip install dnsprobe` (or pipx) gives a `dnsprobe` that builds its probes and runs the quickstart from
any directory.

A scenario argument is a path or a bundled name: `quickstart`, `06-total-outage`, `catalog/06-total-outage`
or `06-total-outage.toml` all name the bundled files, and `dnsprobe scenarios` lists them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from dnsprobe.errors import BuildError, ScenarioError

_PACKAGE = Path(__file__).resolve().parent
QUICKSTART = "quickstart"


def _bundled_dir(name: str, marker: str) -> Path | None:
    """`name` in the source tree beside the package, else the wheel's copy; None when neither has it."""
    for candidate in (_PACKAGE.parent / name, _PACKAGE / "_bundled" / name):
        if (candidate / marker).exists():
            return candidate
    return None


def probe_source_dir() -> Path:
    """The probe's Go module (go.mod and its .go files)."""
    found = _bundled_dir("go_probe", "go.mod")
    if found is None:
        raise BuildError(
            f"the probe's Go source is missing from this installation ({_PACKAGE}/_bundled/go_probe); "
            "reinstall dnsprobe (pip install --force-reinstall dnsprobe)"
        )
    return found


def scenarios_dir() -> Path:
    found = _bundled_dir("scenarios", f"{QUICKSTART}.toml")
    if found is None:
        raise ScenarioError(
            _PACKAGE / "_bundled" / "scenarios",
            "",
            "the bundled scenarios are missing from this installation; reinstall dnsprobe",
        )
    return found


@dataclass(frozen=True)
class BundledScenario:
    name: str  # what `dnsprobe run NAME` takes: "quickstart", "06-total-outage"
    path: Path
    description: str


def bundled_scenarios() -> list[BundledScenario]:
    """Every scenario shipped with dnsprobe: the top-level ones first, then the catalog, by name."""
    root = scenarios_dir()
    found = []
    for path in sorted(root.glob("*.toml")) + sorted((root / "catalog").glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            data = {}
        description = data.get("description")
        found.append(
            BundledScenario(path.stem, path, description.strip() if isinstance(description, str) else "")
        )
    return found


def resolve_scenario(argument: str | Path | None) -> Path:
    """A scenario path from what the user typed: None is the quickstart; an existing file is itself;
    otherwise a bundled name. An unknown name says how to list the bundled ones."""
    if argument is None:
        return scenarios_dir() / f"{QUICKSTART}.toml"
    path = Path(argument)
    if path.exists():
        return path
    text = str(argument)
    if "/" not in text.removeprefix("catalog/") and not text.startswith("."):
        wanted = text.removeprefix("catalog/").removesuffix(".toml")
        for scenario in bundled_scenarios():
            if scenario.name == wanted:
                return scenario.path
        numbered = [s for s in bundled_scenarios() if s.name.split("-", 1)[0] == wanted]
        if len(numbered) == 1:
            return numbered[0].path
    raise ScenarioError(
        text, "", "no such file or bundled scenario (`dnsprobe scenarios` lists the bundled ones)"
    )
