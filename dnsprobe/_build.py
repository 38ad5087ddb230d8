"""The build steps that make a wheel self-contained (pyproject.toml names them to setuptools).

`go_probe/` (the probe's Go source) and `scenarios/` stay at the top of the source tree, their one home.
The sdist carries both folders as they are; a wheel gets copies under `dnsprobe/_bundled/`, where
`dnsprobe.bundled` finds them when there is no source tree beside the package. The Go module's test
files stay out of the wheel: only the build needs the module.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

BUNDLED = ("go_probe", "scenarios")


def _bundled_files() -> list[str]:
    return sorted(
        str(path)
        for name in BUNDLED
        for path in Path(name).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )


class BuildPyWithBundled(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the source tree itself
        target = Path(self.build_lib) / "dnsprobe" / "_bundled"
        for name in BUNDLED:
            if not Path(name).is_dir():  # setuptools builds from the project's root (or the sdist's)
                raise FileNotFoundError(f"{Path.cwd() / name}: missing; the wheel needs it bundled")
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(
                name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*_test.go")
            )


class SdistWithBundled(sdist):
    def make_distribution(self) -> None:
        self.filelist.extend(_bundled_files())
        super().make_distribution()
