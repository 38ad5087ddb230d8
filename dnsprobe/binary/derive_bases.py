"""Re-derive the Debian facts in bases.json from this host's package data (a Debian 12 host).

    python -m dnsprobe.binary.derive_bases            # print what the data file should hold
    python -m dnsprobe.binary.derive_bases --check    # exit 1 when bases.json disagrees

debian-slim is Debian's minbase (every package of Priority `required` in the archive, which includes
apt, and what they depend on); distroless/base-debian12 adds libc6 and libssl3 to distroless/static
(GoogleContainerTools/distroless, base/config.bzl, BASE_PACKAGES["debian12"]). The shared libraries
are the `lib*.so.N` names those packages install (`dpkg -L`); the package set comes from `apt-cache
dumpavail` (priorities) and `dpkg-query` (dependencies). Alpine's contents cannot be derived here (no
apk data on a Debian host): they are recorded in bases.json with their source.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from dnsprobe import proc
from dnsprobe.errors import ToolMissing

DATA = Path(__file__).with_name("bases.json")
_LIB_DIR = re.compile(r"^/(?:usr/)?lib(?:64)?(?:/x86_64-linux-gnu)?/[^/]+\.so[.\d]*$")
# Exactly these packages, without their dependencies: distroless lists every package it installs
# (libgcc-s1, which libc6 depends on, is in distroless/cc, not in base).
DISTROLESS_BASE_PACKAGES = ("libc6", "libssl3")
DISTROLESS_STATIC_PACKAGES = ("base-files", "netbase", "tzdata", "ca-certificates")  # no libraries


def _query(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        raise ToolMissing(argv[0], "deriving base contents needs Debian's package tools", "a Debian host")
    return proc.run(argv, timeout=120, what=argv[0]).stdout


def required_packages() -> list[str]:
    """Every package of Priority `required` in the apt lists (the minbase variant's set)."""
    required: set[str] = set()
    package = ""
    for line in _query(["apt-cache", "dumpavail"]).splitlines():
        if line.startswith("Package: "):
            package = line.split(": ", 1)[1].strip()
        elif line.startswith("Priority: ") and line.split(": ", 1)[1].strip() == "required":
            required.add(package)
    return sorted(required)


def dependency_closure(roots: list[str]) -> list[str]:
    """roots and what they (pre-)depend on, first alternative of each, as installed here."""
    fields = _query(["dpkg-query", "-W", "-f", "${Package}\t${Pre-Depends}, ${Depends}\n"])
    depends: dict[str, list[str]] = {}
    for line in fields.splitlines():
        name, _, deps = line.partition("\t")
        names = []
        for item in deps.split(","):
            first = item.split("|")[0].strip()
            if first:
                names.append(re.split(r"[\s:(]", first)[0])
        depends[name.split(":")[0]] = names
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in depends:
            continue
        seen.add(name)
        todo += depends[name]
    return sorted(seen)


def shared_libraries(packages: list[str]) -> list[str]:
    """The sonames (DT_SONAME: `libc.so.6`, `ld-linux-x86-64.so.2`) of the shared objects the packages
    install in the library directories."""
    return sorted(library_packages(packages))


def library_packages(packages: list[str]) -> dict[str, str]:
    """soname -> the package that installs it, for the packages given."""
    names: dict[str, str] = {}
    for package in packages:
        for path in _query(["dpkg", "-L", package]).splitlines():
            if _LIB_DIR.match(path):
                soname = _soname(Path(path))
                if soname:
                    names.setdefault(soname, package)
    return dict(sorted(names.items()))


def _soname(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            section = ELFFile(fh).get_section_by_name(".dynamic")
            if not isinstance(section, DynamicSection):
                return None
            for tag in section.iter_tags():
                if tag.entry.d_tag == "DT_SONAME":
                    return str(tag.soname)  # type: ignore[attr-defined]
    except (OSError, ELFError):
        return None
    return None


def derive() -> dict[str, Any]:
    """Per Debian base its packages and libraries, and (key `library_packages`) which package ships
    each library, so a fix line can name the package to install."""
    slim = dependency_closure(required_packages())
    base = list(DISTROLESS_BASE_PACKAGES)
    return {
        "library_packages": library_packages(sorted({*slim, *base})),
        "debian-slim": {"packages": slim, "libs": shared_libraries(slim)},
        "distroless-base": {
            "packages": sorted([*DISTROLESS_STATIC_PACKAGES, *base]),
            "libs": shared_libraries(base),
        },
    }


def differences(data: dict[str, Any], derived: dict[str, Any]) -> list[str]:
    """What bases.json says that the host's package data does not (x86-64 libraries and packages)."""
    problems = []
    bases = data["bases"]
    if data.get("debian_library_packages") != derived["library_packages"]:
        problems.append("debian_library_packages: differs from what dpkg -L says")
    for name, facts in derived.items():
        if name == "library_packages":
            continue
        shipped = bases[name]
        for key, want in (
            ("packages", facts["packages"]),
            ("libs", facts["libs"]),
        ):
            have = shipped[key] if key == "packages" else shipped["arches"]["x86-64"]["libs"]
            if sorted(have) != sorted(want):
                extra = sorted(set(have) - set(want))
                missing = sorted(set(want) - set(have))
                problems.append(f"{name} {key}: not derivable {extra}, derived but missing {missing}")
    return problems


def main(argv: list[str]) -> int:
    derived = derive()
    if "--check" in argv:
        problems = differences(json.loads(DATA.read_text(encoding="utf-8")), derived)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    print(json.dumps(derived, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
