"""Command-line overrides of a scenario: `--modes go,musl`, `--duration 30s`, `--users 8` and the general
`--set load.rate=2000`, applied to the scenario's TOML data before it is validated, so an override is
checked exactly like the file and a mistake names the key it came from.

A `--set` key is a dotted path into the TOML (`pod.ndots`, `nameserver.engine`,
`nameserver.faults[0].probability`); its value is read as a TOML value (`2000`, `true`, `"x"`,
`["go", "cgo"]`), and a bare word that is not one is taken as a string (`--set nameserver.engine=python`).
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from dnsprobe.durations import parse_duration
from dnsprobe.errors import ScenarioError

_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)$")


@dataclass(frozen=True)
class Overrides:
    modes: list[str] | None = None
    duration_s: float | None = None
    users: int | None = None
    sets: list[str] = field(default_factory=list)

    @classmethod
    def from_options(
        cls, *, modes: str | None, duration: str | None, users: int | None, sets: list[str] | None
    ) -> Overrides:
        """From the command line's text; a bad value is one line naming the option."""
        mode_list = None
        if modes is not None:
            mode_list = [m.strip() for m in modes.split(",") if m.strip()]
            if not mode_list:
                raise ScenarioError("--modes", "", "name at least one mode, e.g. --modes go,musl")
        seconds = None
        if duration is not None:
            try:
                seconds = parse_duration(duration)
            except ValueError as exc:
                raise ScenarioError("--duration", "", str(exc)) from None
        return cls(modes=mode_list, duration_s=seconds, users=users, sets=list(sets or []))

    def __bool__(self) -> bool:
        return bool(self.modes or self.duration_s is not None or self.users is not None or self.sets)

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        """A copy of the scenario's TOML data with the overrides in place."""
        data = copy.deepcopy(data)
        if self.modes is not None:
            data["modes"] = list(self.modes)
            _drop_other_modes(data, set(self.modes))
        if self.duration_s is not None:
            data.setdefault("load", {})["duration"] = self.duration_s
        if self.users is not None:
            data.setdefault("load", {})["users"] = self.users
        for assignment in self.sets:
            key, value = _parse_assignment(assignment)
            _assign(data, key, value, assignment)
        return data


def _drop_other_modes(data: dict[str, Any], keep: set[str]) -> None:
    """`--modes go` on a catalog scenario: its per-mode gates and behaviours for other modes go too."""
    expect_modes = data.get("expect", {}).get("modes")
    if isinstance(expect_modes, dict):
        for mode in [m for m in expect_modes if m not in keep]:
            del expect_modes[mode]
    behaviours = data.get("behaviour")
    if isinstance(behaviours, list):
        kept = []
        for entry in behaviours:
            if isinstance(entry, dict) and isinstance(entry.get("modes"), list):
                entry["modes"] = [m for m in entry["modes"] if m in keep]
                if not entry["modes"]:
                    continue
            kept.append(entry)
        data["behaviour"] = kept


def _parse_assignment(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError("--set", text, "expected KEY=VALUE, e.g. --set load.rate=2000")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word: engine=python
    return key, value


def _assign(data: dict[str, Any], key: str, value: Any, assignment: str) -> None:
    where: Any = data
    parts = key.split(".")
    for depth, part in enumerate(parts):
        match = _SEGMENT.match(part)
        if match is None:
            raise ScenarioError(
                "--set", key, f"{part!r} is not a key; write e.g. load.rate or faults[0].rate"
            )
        name, indexes = match.group(1), [int(i) for i in re.findall(r"\d+", match.group(2))]
        last = depth == len(parts) - 1
        if not isinstance(where, dict):
            raise ScenarioError("--set", key, f"{'.'.join(parts[:depth])} is not a table")
        if last and not indexes:
            where[name] = value
            return
        where = where.setdefault(name, {} if indexes == [] else [])
        for position, index in enumerate(indexes):
            if not isinstance(where, list) or index >= len(where):
                raise ScenarioError("--set", key, f"{name} has no entry [{index}]")
            if last and position == len(indexes) - 1:
                where[index] = value
                return
            where = where[index]
