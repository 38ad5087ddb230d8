"""`dnsprobe lint` on golden Dockerfiles (tests/data/dockerfiles/, expectations in expected.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dnsprobe.cli import main
from dnsprobe.tools.lint import classify_image, lint_dockerfile, lint_text

DATA = Path(__file__).parent / "data" / "dockerfiles"
EXPECTED = json.loads((DATA / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_dockerfiles(name: str) -> None:
    want = EXPECTED[name]
    result = lint_dockerfile(DATA / name)
    assert sorted(f.code for f in result.findings) == want["codes"]
    assert result.cgo is want["cgo"]
    assert result.branch.startswith(want["branch"])
    assert (1 if result.errors else 0) == want["exit"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_exit_codes(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(DATA / name)]) == EXPECTED[name]["exit"]
    out = capsys.readouterr().out
    assert "decision tree: branch" in out
    for code in EXPECTED[name]["codes"]:
        assert code in out


def test_the_trap_names_the_loader_and_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(DATA / "trap_glibc_builder_alpine_runtime.Dockerfile"), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    (finding,) = data["findings"]
    assert finding["severity"] == "error"
    assert finding["line"] == 7  # the runtime stage's FROM
    assert "/lib64/ld-linux-x86-64.so.2" in finding["message"]
    assert "distroless/base" in finding["fix"]


def test_fixing_the_trap_makes_it_clean() -> None:
    text = (DATA / "trap_glibc_builder_alpine_runtime.Dockerfile").read_text()
    fixed = text.replace("FROM alpine:3.20", "FROM gcr.io/distroless/base-debian12:nonroot").replace(
        "RUN apk add --no-cache ca-certificates\n", ""
    )
    assert not lint_text(fixed.encode()).findings
    pure = text.replace("RUN go build", "RUN CGO_ENABLED=0 go build")
    result = lint_text(pure.encode())
    assert not result.errors
    assert result.branch.startswith("2")


def test_single_stage_and_stage_inheritance() -> None:
    text = b"FROM golang:1.22-alpine AS base\nRUN apk add build-base\nFROM base AS build\n"
    text += b"RUN go build -o /app .\nFROM scratch\nCOPY --from=build /app /app\nUSER 1000\n"
    result = lint_text(text)
    # build inherits alpine + the C compiler from base: cgo on by default, musl binary on scratch.
    assert result.cgo is True
    assert [f.code for f in result.errors] == ["musl-binary-without-musl"]


@pytest.mark.parametrize(
    ("image", "family"),
    [
        ("golang:1.22", "glibc"),
        ("golang:1.22-alpine3.20", "musl"),
        ("alpine", "musl"),
        ("scratch", "scratch"),
        ("gcr.io/distroless/static-debian12:nonroot", "static"),
        ("gcr.io/distroless/base-debian12", "glibc"),
        ("debian:12-slim", "glibc"),
        ("registry.example.test:5000/team/thing:1", "unknown"),
    ],
)
def test_classify_image(image: str, family: str) -> None:
    assert classify_image(image) == family


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(DATA / "bad_not_a_dockerfile.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert ":1: unknown instruction 'FORM'" in err
    assert main(["lint", str(tmp_path / "Dockerfile")]) == 2
    assert "no such file" in capsys.readouterr().err
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    assert main(["lint", str(binary)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    assert main(["lint", str(empty)]) == 2
    assert "no FROM" in capsys.readouterr().err


def _codes(text: str) -> dict[str, str]:
    return {f.code: f.severity for f in lint_text(text.encode()).findings}


def test_severities_follow_what_the_base_has() -> None:
    # alpine has a CA bundle and a shell: no CA warning, root is a note; scratch: both warnings.
    alpine = (DATA / "alpine_root_note.Dockerfile").read_text()
    assert _codes(alpine) == {"runs-as-root": "note"}
    on_scratch = alpine.replace("FROM alpine:3.20", "FROM scratch")
    assert _codes(on_scratch) == {"no-ca-certificates": "warning", "runs-as-root": "warning"}


def test_unknown_base_is_named() -> None:
    result = lint_text((DATA / "arg_base_unresolved.Dockerfile").read_bytes())
    (note,) = [f for f in result.findings if f.code == "unknown-base"]
    assert "unknown base: ARG RUNTIME_IMAGE has no default" in note.message
    assert "unknown base" in result.runtime


def test_only_the_copied_build_decides() -> None:
    # The same chain, but the runtime copies only the CGO_ENABLED=0 health check.
    text = (DATA / "chain_scope_app_cgo.Dockerfile").read_text()
    hc_only = text.replace("COPY --from=build /app /app\n", "").replace('["/app"]', '["/hc"]')
    result = lint_text(hc_only.encode())
    assert result.cgo is False
    assert not result.errors


def test_go_release_decides_the_default() -> None:
    # Go 1.20 and later turn cgo off without a C compiler; 1.19 does not.
    old = (DATA / "go119_alpine_default_cgo.Dockerfile").read_text()
    new = old.replace("golang:1.19-alpine", "golang:1.20-alpine")
    assert lint_text(old.encode()).cgo is True
    assert lint_text(new.encode()).cgo is False
    assert not lint_text(new.encode()).errors


def test_run_flags_and_wrappers_do_not_hide_the_build() -> None:
    # Stands for BuildKit cache mounts (`RUN --mount=type=cache,... go build`) and godep-era
    # `godep go build`: the go build is still the one that decides.
    mount = (
        b"FROM golang:1.22 AS b\nRUN --mount=target=. \\\n"
        b" --mount=type=cache,target=/root/.cache/go-build \\\n"
        b" go build -o /app .\nFROM scratch\nCOPY --from=b /app /app\nUSER 1\n"
    )
    result = lint_text(mount)
    assert result.cgo is True
    assert [f.code for f in result.errors] == ["glibc-binary-on-no-libc"]
    assert "on by default" in result.errors[0].message
    wrapped = mount.replace(b" go build", b" godep go build").replace(
        b"go build -o", b"go build -tags netgo -o"
    )
    assert lint_text(wrapped).cgo is True


def test_old_alpine_has_no_ca_bundle() -> None:
    # Stands for images still on alpine:3.5-3.8 (before ca-certificates-bundle joined the base set).
    text = b'FROM alpine:3.5\nCOPY app /app\nUSER 1\nENTRYPOINT ["/app"]\n'
    assert [f.code for f in lint_text(text).findings] == ["no-ca-certificates"]
    assert not lint_text(text.replace(b"3.5", b"3.20")).findings


def test_same_debian_release_is_clean() -> None:
    text = (DATA / "glibc_newer_builder.Dockerfile").read_text()
    assert not lint_text(text.replace("golang:1.25", "golang:1.25-bookworm").encode()).findings
    assert not lint_text(text.replace("base-debian12", "base-debian13").encode()).findings
    # A tag whose default Debian release changed over time is not guessed at.
    assert not lint_text(text.replace("golang:1.25", "golang:1.23").encode()).findings
