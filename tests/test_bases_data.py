"""bases.json: what can be derived here is derived again and compared; the rest has its source."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dnsprobe.binary import BASES
from dnsprobe.binary.derive_bases import DATA, derive, differences


def debian_12() -> bool:
    release = Path("/etc/os-release")
    return release.exists() and 'VERSION_ID="12"' in release.read_text() and shutil.which("dpkg") is not None


def test_debian_facts_rederive_from_package_data() -> None:
    if not debian_12():
        pytest.skip("needs a Debian 12 host with dpkg and apt-cache (the data is Debian 12's)")
    assert differences(json.loads(DATA.read_text()), derive()) == []


def test_every_base_has_both_architectures_and_sources() -> None:
    for base in BASES.values():
        assert set(base.arches) == {"x86-64", "arm64"}, base.name
        assert base.sources, base.name
        for arch, contents in base.arches.items():
            for loader in contents.loaders:
                # The loader's file is one of the base's shared objects, for that architecture.
                assert loader.rsplit("/", 1)[-1] in contents.libs, (base.name, arch, loader)
    assert BASES["alpine"].ca_certificates  # ca-certificates-bundle is in alpine's base set
    assert not BASES["debian-slim"].ca_certificates
    assert {"libseccomp.so.2", "libsystemd.so.0"} <= set(BASES["debian-slim"].libs)


def test_host_loader_matches_the_glibc_bases() -> None:
    if not debian_12():
        pytest.skip("needs a Debian 12 host")
    # libc6 on this host installs the x86-64 loader at the path PT_INTERP names.
    assert Path("/lib64/ld-linux-x86-64.so.2").exists()
    for name in ("debian-slim", "distroless-base"):
        assert BASES[name].loaders == ("/lib64/ld-linux-x86-64.so.2",)
