"""report.html in headless Chromium (Debian's chromium): every chart image loads and has pixels.

The report itself has no JavaScript; the test adds a few lines to a copy that, once the page has loaded,
writes each image's state into the DOM, and reads it back with --dump-dom. No WebDriver needed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dnsprobe.bench.report import build_report, generate_run
from dnsprobe.report.common import CHART_NAMES
from tests.conftest import need_tool

CHECK = """<script>
window.addEventListener("load", () => {
  const seen = [...document.images].map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth,
                                               h: i.naturalHeight}));
  const out = document.createElement("pre"); out.id = "img-check"; out.textContent = JSON.stringify(seen);
  document.body.appendChild(out);
});
</script>"""
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    need_tool("chromium", "apt-get install chromium")
    return shutil.which("chromium") or "chromium"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run") / "browser-run"
    run.mkdir()
    generate_run(run, 5_000)
    build_report(run)
    return run


def test_every_chart_image_loads(run_dir: Path, tmp_path: Path) -> None:
    html = (run_dir / "report.html").read_text()
    page = tmp_path / "page.html"
    page.write_text(html.replace("</body>", CHECK + "</body>"))
    done = subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--window-size=412,900",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r'<pre id="img-check">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    images = json.loads(
        found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    )
    assert len(images) == len(CHART_NAMES)
    for image in images:
        assert image["complete"] and image["w"] > 300 and image["h"] > 200, image


def test_screenshot_on_a_phone_width(run_dir: Path, tmp_path: Path) -> None:
    shot = tmp_path / "phone.png"
    subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=412,2000",
            f"--screenshot={shot}",
            (run_dir / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
