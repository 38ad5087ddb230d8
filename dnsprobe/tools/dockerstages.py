"""A Dockerfile's stages as `dnsprobe lint` sees them: base image and its C library, ENV/ARG, RUN lines
(heredocs expanded, `--mount` flags dropped), each `go build` with the variables in force for it, COPY
sources and USER. Parsed with dockerfile-parse after dnsprobe.tools.dockershell cut the heredocs out.
"""

from __future__ import annotations

import io
import re
import shlex
from dataclasses import dataclass, field
from typing import Literal

from dockerfile_parse import DockerfileParser

from dnsprobe.errors import InspectError
from dnsprobe.tools.dockershell import Heredoc, expand_heredocs, shell_commands

Family = Literal["glibc", "musl", "scratch", "static", "unknown"]
_INSTRUCTION_WORDS = (
    "FROM RUN CMD LABEL MAINTAINER EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD "
    "STOPSIGNAL HEALTHCHECK SHELL"
)
INSTRUCTIONS = frozenset(_INSTRUCTION_WORDS.split())
_GLIBC_NAMES = ("debian", "ubuntu", "buildpack-deps", "fedora", "rockylinux", "almalinux", "amazonlinux")
_C_COMPILER = re.compile(r"\b(build-base|gcc|clang|musl-dev)\b")
_GO_BUILD = re.compile(r"\bgo\s+(build|install)\b")
_GOLANG_RELEASE = re.compile(r"^(\d+)\.(\d+)")
_RUN_FLAGS = re.compile(
    r"^(?:\s*--[\w-]+(?:=(?:\"[^\"]*\"|'[^']*'|\S)*)?)+\s*"
)  # RUN --mount=... --network=...
# Commands that run the next word as a command (godep go build, time go build).
_WRAPPERS = frozenset({"godep", "time", "nice", "sudo", "exec", "command", "nohup"})
_GO_COMMANDS = frozenset({"go", "xx-go"})  # xx-go: docker/xx's cross-compiling wrapper
MAX_DOCKERFILE_BYTES = 4 << 20  # a Dockerfile is a few kB; /dev/zero-like inputs stop here


@dataclass(frozen=True)
class GoBuild:
    """One `go build`/`go install` command with what decides its cgo and linkage."""

    line: int
    env: dict[str, str]  # the stage's ENV/ARG overlaid by the command's own assignments
    output: str | None  # -o
    ldflags: str
    text: str

    @property
    def cgo_setting(self) -> str | None:
        value = self.env.get("CGO_ENABLED", "").strip("\"'")
        return value if value in ("0", "1") else None

    @property
    def external_static(self) -> bool:
        return bool(re.search(r"-linkmode[= ]+['\"]?external", self.ldflags)) and self.extldflags_static

    @property
    def extldflags_static(self) -> bool:
        return bool(re.search(r"-extldflags[= ]+['\"]?[^'\"]*-static\b", self.ldflags))


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
    platform: str = ""  # FROM --platform=...
    release: tuple[int, int] | None = None  # golang:1.22-... -> (1, 22)
    unresolved: str | None = None  # the ARG a FROM needed and did not get
    heredocs: dict[int, Heredoc] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"stage {self.index} ({self.name or self.image})"

    def go_builds(self) -> list[tuple[int, str]]:
        return [(line, text) for line, text in self.runs if _GO_BUILD.search(text)]

    def go_commands(self) -> list[GoBuild]:
        """Every `go build`/`go install` in this stage's RUN lines, with the variables in force for it."""
        builds = []
        for line, text in self.runs:
            for command in shell_commands(text):
                argv = command.argv
                while argv and argv[0] in _WRAPPERS:
                    argv = argv[1:]
                name = argv[0].rsplit("/", 1)[-1] if argv else ""
                if len(argv) >= 2 and name in _GO_COMMANDS and argv[1] in ("build", "install"):
                    builds.append(
                        GoBuild(
                            line,
                            self.env | command.env,
                            _flag(argv, "-o"),
                            _flag(argv, "-ldflags") or "",
                            command.text,
                        )
                    )
        return builds

    def has_c_compiler(self) -> bool:
        if self.inherited_compiler or (self.family == "glibc" and self.golang):
            return True  # the Debian golang images ship gcc
        return any(_C_COMPILER.search(text) for _, text in self.runs)


def _flag(argv: tuple[str, ...], name: str) -> str | None:
    """The value of a Go flag in any of its spellings: -o x, -o=x, --o x."""
    for i, word in enumerate(argv):
        for spelling in (name, "-" + name):
            if word == spelling and i + 1 < len(argv):
                return argv[i + 1]
            if word.startswith(spelling + "="):
                return word[len(spelling) + 1 :]
    return None


def parse_stages(data: bytes, *, source: str) -> list[Stage]:
    """The Dockerfile's stages; InspectError (one line, with the line number) when it is not one."""
    if len(data) > MAX_DOCKERFILE_BYTES:
        raise InspectError(f"{source}: larger than {MAX_DOCKERFILE_BYTES >> 20} MiB; not a Dockerfile")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InspectError(f"{source}: not a Dockerfile (not UTF-8 text)") from None
    if "\x00" in text:
        raise InspectError(f"{source}: not a Dockerfile (it holds NUL bytes: a binary file?)")
    text, heredocs = expand_heredocs(text)
    try:
        parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
        structure = parser.structure
        images = parser.parent_images
    except (UnicodeDecodeError, ValueError, IndexError, KeyError) as exc:
        raise InspectError(f"{source}: cannot parse as a Dockerfile ({type(exc).__name__}: {exc})") from None
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
            image = images[len(stages)] if len(stages) < len(images) else ""
            stages.append(_new_stage(len(stages), image, value, line, stages))
            stages[-1].heredocs = heredocs
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
    platform = next((w.split("=", 1)[1] for w in words if w.startswith("--platform=")), "")
    words = [w for w in words if not w.startswith("--")]
    name = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else None
    unresolved = None
    if not image or "$" in image:
        wanted = re.search(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", words[0] if words else "")
        unresolved = wanted[1] if wanted else "?"
        image = f"unknown base (ARG {unresolved} has no default)"
    parent = next((s for s in earlier if s.name == image or str(s.index) == image), None)
    if parent is not None:
        stage = Stage(index, image, name, line, parent.family, parent.golang, dict(parent.env))
        stage.inherited_compiler = parent.has_c_compiler()
        stage.release, stage.platform = parent.release, platform or parent.platform
        return stage
    repo = image.split("@")[0].rsplit(":", 1)[0] if "/" in image or ":" in image else image
    golang = repo.rsplit("/", 1)[-1] == "golang"
    family: Family = "unknown" if unresolved else classify_image(image)
    stage = Stage(index, image, name, line, family, golang, platform=platform, unresolved=unresolved)
    if golang:
        tag = image.split("@")[0].rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
        found = _GOLANG_RELEASE.match(tag)
        stage.release = (int(found[1]), int(found[2])) if found else None
    return stage


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
        heredoc = stage.heredocs.get(line)
        if heredoc is not None and heredoc.shell:
            value = heredoc.body
        stage.runs.append((line, _RUN_FLAGS.sub("", value)))
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
