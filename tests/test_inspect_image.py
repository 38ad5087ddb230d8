"""`inspect IMAGE`: the verdicts for the image's entrypoint, and which base the image is built on.

Needs a running Docker engine; the images are the offline stand-ins (no registry is used).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dnsprobe.build.probe import build_probe
from dnsprobe.cli import main
from dnsprobe.errors import DockerError
from dnsprobe.modes import MODES

pytestmark = [pytest.mark.docker]


@pytest.fixture(scope="module")
def engine() -> Iterator[object]:
    from dnsprobe.dockerengine import connect

    try:
        client = connect(timeout=30)
    except DockerError as exc:
        pytest.skip(str(exc))
    yield client
    client.close()


@pytest.mark.parametrize(("mode", "base"), [("cgo", "distroless-base"), ("go", "alpine")])
def test_image_says_its_base(
    engine: object, probe_cache: Path, capsys: pytest.CaptureFixture[str], mode: str, base: str
) -> None:
    from dnsprobe.sandbox.docker import build_probe_image
    from dnsprobe.sandbox.standins import ensure_standins

    standins = ensure_standins(engine, [base])
    binary = build_probe(MODES[mode], cache_dir=probe_cache).path
    tag = build_probe_image(engine, binary=binary, base_tag=standins[base].tag, mode=mode, base=base)
    assert main(["inspect", tag, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["image"] == tag
    assert data["image_base"] == base
    assert main(["inspect", tag]) == 0
    assert "image base" in capsys.readouterr().out
