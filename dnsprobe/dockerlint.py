"""`dnsprobe lint`: the CGO_ENABLED traps in a Dockerfile, judged by DESIGN.md's decision tree.

The Dockerfile is parsed with dockerfile-parse (instructions, continuation lines, ARG substitution in
FROM). Each stage is classified by its base image's C library (glibc, musl, none); the stage that runs
`go build` decides cgo (explicit CGO_ENABLED, or Go's default: on when a C compiler is present) and
linkage; the last stage is the runtime. Errors are what stops the image from building or the binary from
starting; warnings are what bites later (no CA bundle, running as root).
"""

from __future__ import annotations

import io
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dockerfile_parse import DockerfileParser

from dnsprobe.errors import InspectError
from dnsprobe.files_io import read_limited

Family = Literal["glibc", "musl", "scratch", "static", "unknown"]
Severity = Literal["error", "warning"]

_INSTRUCTION_WORDS = (
    "FROM RUN CMD LABEL MAINTAINER EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD "
    "STOPSIGNAL HEALTHCHECK SHELL"
)
INSTRUCTIONS = frozenset(_INSTRUCTION_WORDS.split())
_GLIBC_NAMES = ("debian", "ubuntu", "buildpack-deps", "fedora", "rockylinux", "almalinux", "amazonlinux")
_C_COMPILER = re.compile(r"\b(build-base|gcc|clang|musl-dev)\b")
_GO_BUILD = re.compile(r"\bgo\s+(build|install)\b")
_CGO_ASSIGN = re.compile(r"\bCGO_ENABLED=[\"']?([01])")
_GLIBC_RUNTIMES = "gcr.io/distroless/base-debian12:nonroot or debian:12-slim"


@dataclass
class Stage:
    index: int
    image: str
    name: str | None
    line: int  # 1-based line of the FROM
    family: Family
    golang: bool  # a golang:* image (or built on one)
    env: dict[str, str] = field(default_factory=dict)
    runs: list[tuple[int, str]] = field(default_factory=list)
    copies: list[tuple[int, str | None, str]] = field(default_factory=list)  # (line, --from, value)
    user: str | None = None
    user_line: int = 0
    inherited_compiler: bool = False  # FROM an earlier stage that installed one

    @property
    def label(self) -> str:
        return f"stage {self.index} ({self.name or self.image})"

    def go_builds(self) -> list[tuple[int, str]]:
        return [(line, text) for line, text in self.runs if _GO_BUILD.search(text)]

    def has_c_compiler(self) -> bool:
        if self.inherited_compiler or (self.family == "glibc" and self.golang):
            return True  # the Debian golang images ship gcc
        return any(_C_COMPILER.search(text) for _, text in self.runs)


@dataclass(frozen=True)
class Finding:
    severity: Severity
    line: int
    code: str
    message: str
    fix: str

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("severity", "line", "code", "message", "fix")}


@dataclass(frozen=True)
class LintResult:
    path: str
    stages: tuple[str, ...]
    builder: str | None
    runtime: str
    cgo: bool | None  # None: no `go build` seen
    branch: str
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "stages": list(self.stages),
            "builder": self.builder,
            "runtime": self.runtime,
            "cgo": self.cgo,
            "decision_tree": self.branch,
            "findings": [f.to_json() for f in self.findings],
            "errors": len(self.errors),
        }


def lint_dockerfile(path: Path) -> LintResult:
    try:
        data = read_limited(path, "Dockerfile")
    except FileNotFoundError:
        raise InspectError(f"{path}: no such file (give the path of a Dockerfile)") from None
    except OSError as exc:
        raise InspectError(f"{path}: cannot read: {exc.strerror}") from None
    return lint_text(data, source=str(path))


def lint_text(data: bytes, *, source: str = "Dockerfile") -> LintResult:
    stages = parse_stages(data, source=source)
    runtime = stages[-1]
    builder = _builder_for(runtime, stages)
    findings: list[Finding] = []
    cgo: bool | None = None
    branch = "1 (does the build need cgo?): no `go build` here; run `dnsprobe inspect` on the binary"
    if builder is not None:
        build_line, build_cmd = builder.go_builds()[0]
        cgo, explicit = _cgo_setting(builder, build_cmd)
        static = bool(re.search(r"-extldflags[= ]+['\"]?[^'\"]*-static", build_cmd))
        findings += _compiler_findings(builder, build_line, cgo, explicit)
        findings += _libc_findings(builder, runtime, build_line, cgo, static)
        branch = _branch(builder, cgo, static)
    findings += _runtime_findings(runtime)
    findings.sort(key=lambda f: (f.severity != "error", f.line))
    return LintResult(
        source,
        tuple(f"{s.label}: {s.family}" for s in stages),
        builder.label if builder else None,
        runtime.label,
        cgo,
        branch,
        tuple(findings),
    )


def parse_stages(data: bytes, *, source: str) -> list[Stage]:
    """The Dockerfile's stages; InspectError (one line, with the line number) when it is not one."""
    try:
        parser = DockerfileParser(fileobj=io.BytesIO(data))
        structure = parser.structure
        images = parser.parent_images
    except UnicodeDecodeError:
        raise InspectError(f"{source}: not a Dockerfile (not UTF-8 text)") from None
    stages: list[Stage] = []
    for item in structure:
        instruction, value, line = item["instruction"], item["value"], item["startline"] + 1
        if instruction == "COMMENT":
            continue
        if instruction not in INSTRUCTIONS:
            raise InspectError(
                f"{source}:{line}: unknown instruction {instruction!r}; not a Dockerfile, or a typo"
            )
        if instruction == "FROM":
            stages.append(_new_stage(len(stages), images[len(stages)], value, line, stages))
        elif not stages:
            if instruction != "ARG":
                raise InspectError(f"{source}:{line}: {instruction} before the first FROM")
        else:
            _add(stages[-1], instruction, value, line)
    if not stages:
        raise InspectError(f"{source}: no FROM instruction; not a Dockerfile")
    return stages


def _new_stage(index: int, image: str, value: str, line: int, earlier: list[Stage]) -> Stage:
    words = value.split()
    name = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else None
    parent = next((s for s in earlier if s.name == image or str(s.index) == image), None)
    if parent is not None:
        stage = Stage(index, image, name, line, parent.family, parent.golang, dict(parent.env))
        stage.inherited_compiler = parent.has_c_compiler()
        return stage
    repo = image.split("@")[0].rsplit(":", 1)[0] if "/" in image or ":" in image else image
    golang = repo.rsplit("/", 1)[-1] == "golang"
    return Stage(index, image, name, line, classify_image(image), golang)


def classify_image(image: str) -> Family:
    """Which C library a base image has, from its name."""
    ref = image.lower()
    repo, _, tag = ref.split("@")[0].partition(":")
    last = repo.rsplit("/", 1)[-1]
    if ref == "scratch":
        return "scratch"
    if "distroless/static" in repo:
        return "static"
    if "distroless/" in repo:
        return "glibc"
    if last == "alpine" or "alpine" in tag:
        return "musl"
    if last == "golang" or last in _GLIBC_NAMES or "slim" in tag or "bookworm" in tag or "bullseye" in tag:
        return "glibc"
    return "unknown"


def _add(stage: Stage, instruction: str, value: str, line: int) -> None:
    if instruction == "ENV":
        stage.env.update(_parse_env(value))
    elif instruction == "ARG":
        name, sep, default = value.partition("=")
        if sep and name.strip() not in stage.env:
            stage.env[name.strip()] = default.strip().strip("\"'")
    elif instruction == "RUN":
        stage.runs.append((line, value))
    elif instruction in ("COPY", "ADD"):
        found = re.search(r"--from=(\S+)", value)
        stage.copies.append((line, found[1] if found else None, value))
    elif instruction == "USER":
        stage.user, stage.user_line = value.strip(), line


def _parse_env(value: str) -> dict[str, str]:
    try:
        words = shlex.split(value)
    except ValueError:
        words = value.split()
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}  # legacy `ENV KEY value`
    return dict(word.split("=", 1) for word in words if "=" in word)


def _builder_for(runtime: Stage, stages: list[Stage]) -> Stage | None:
    """The stage whose `go build` made the runtime's binary (the runtime itself in one-stage files)."""
    if runtime.go_builds():
        return runtime
    by_ref = {s.name: s for s in stages if s.name} | {str(s.index): s for s in stages}
    for _, source, _ in runtime.copies:
        stage = by_ref.get(source or "")
        if stage is not None and stage.go_builds():
            return stage
    return next((s for s in reversed(stages[:-1]) if s.go_builds()), None)


def _cgo_setting(builder: Stage, build_cmd: str) -> tuple[bool, bool]:
    """(cgo on?, set explicitly?) for the `go build` command line of the builder."""
    inline = _CGO_ASSIGN.search(build_cmd)
    if inline:
        return inline[1] == "1", True
    if builder.env.get("CGO_ENABLED") in ("0", "1"):
        return builder.env["CGO_ENABLED"] == "1", True
    # Go's default: cgo is on when a C compiler is found (the Debian golang image has gcc).
    return builder.has_c_compiler(), False


def _compiler_findings(builder: Stage, line: int, cgo: bool, explicit: bool) -> list[Finding]:
    if cgo and explicit and builder.family == "musl" and not builder.has_c_compiler():
        return [
            Finding(
                "error",
                line,
                "cgo-without-c-compiler",
                f"CGO_ENABLED=1 on {builder.image}, which has no C compiler: the build fails "
                '(cgo: C compiler "gcc" not found)',
                "add `RUN apk add --no-cache build-base` to this stage, or build with CGO_ENABLED=0 "
                "if no package needs cgo (dnsprobe cgo-deps)",
            )
        ]
    return []


def _libc_findings(builder: Stage, runtime: Stage, line: int, cgo: bool, static: bool) -> list[Finding]:
    if not cgo or static or builder is runtime:
        return []
    have, need = runtime.family, builder.family
    if need == "glibc" and have in ("musl", "scratch", "static"):
        return [
            Finding(
                "error",
                runtime.line,
                "glibc-binary-on-" + ("musl" if have == "musl" else "no-libc"),
                f"cgo binary built on {builder.image} (glibc, line {line}) runs on {runtime.image} "
                f"({'musl' if have == 'musl' else 'no C library'}): the loader /lib64/ld-linux-x86-64.so.2 "
                "is missing, so it fails with `exec /app: no such file or directory`",
                f"run it on {_GLIBC_RUNTIMES}; or build with CGO_ENABLED=0 if no package needs cgo "
                "(dnsprobe cgo-deps); or build on golang:1.x-alpine with build-base",
            )
        ]
    if need == "musl" and have in ("glibc", "scratch", "static"):
        return [
            Finding(
                "error",
                runtime.line,
                "musl-binary-without-musl",
                f"cgo binary built on {builder.image} (musl, line {line}) runs on {runtime.image}: the "
                "loader /lib/ld-musl-x86_64.so.1 is missing (`exec /app: no such file or directory`)",
                "run it on alpine (the builder's release), or link statically "
                "(-ldflags '-linkmode external -extldflags -static')",
            )
        ]
    return []


def _runtime_findings(runtime: Stage) -> list[Finding]:
    findings: list[Finding] = []
    copied = " ".join(value for _, _, value in runtime.copies)
    installed = " ".join(text for _, text in runtime.runs)
    has_certs = "ca-certificates" in copied or "/etc/ssl/certs" in copied or "ca-certificates" in installed
    if runtime.family in ("scratch", "musl") and not has_certs:
        how = (
            "COPY --from=<builder> /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/"
            if runtime.family == "scratch"
            else "RUN apk add --no-cache ca-certificates"
        )
        findings.append(
            Finding(
                "warning",
                runtime.line,
                "no-ca-certificates",
                f"{runtime.image} has no CA certificates: TLS to public endpoints fails "
                "(x509: certificate signed by unknown authority)",
                f"{how}, or use gcr.io/distroless/static-debian12:nonroot",
            )
        )
    user = (runtime.user or "").split(":")[0]
    nonroot_default = runtime.family in ("static", "glibc") and runtime.image.endswith(":nonroot")
    if user in ("root", "0") or (not user and not nonroot_default):
        where = runtime.user_line if user else runtime.line
        findings.append(
            Finding(
                "warning",
                where,
                "runs-as-root",
                f"the runtime stage ({runtime.image}) runs as root"
                + ("" if user else " (no USER instruction)"),
                "add `USER 65532:65532` (distroless: use the :nonroot tag; alpine: "
                "`RUN adduser -D -u 10001 app` then `USER app`)",
            )
        )
    return findings


def _branch(builder: Stage, cgo: bool, static: bool) -> str:
    if not cgo:
        return (
            "2 (no cgo): CGO_ENABLED=0 gives a static binary that runs on any base; "
            "gcr.io/distroless/static-debian12:nonroot is the sane default"
        )
    if static:
        return "3 (cgo, linked statically): runs on any base, but glibc's NSS still wants its modules"
    if builder.family == "musl":
        return "3 (cgo on musl): both stages on alpine; the runtime adds ca-certificates and a non-root user"
    return f"3 (cgo on glibc): the runtime stage needs the same glibc: {_GLIBC_RUNTIMES}"


def format_lint(result: LintResult) -> str:
    lines = [f"{result.path}: {len(result.stages)} stage(s); runtime {result.runtime}"]
    if result.builder:
        cgo = {True: "on", False: "off", None: "?"}[result.cgo]
        lines.append(f"  builder {result.builder}, cgo {cgo}")
    lines.append(f"  decision tree: branch {result.branch}")
    if result.cgo is not None:
        lines.append("  (question 1, does the build need cgo at all: dnsprobe cgo-deps <module dir>)")
    for f in result.findings:
        lines.append(f"  {result.path}:{f.line}: {f.severity}: {f.code}: {f.message}")
        lines.append(f"      fix: {f.fix}")
    if not result.findings:
        lines.append("  no findings")
    return "\n".join(lines)
