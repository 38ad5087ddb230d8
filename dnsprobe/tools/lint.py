"""`dnsprobe lint`: the CGO_ENABLED traps in a Dockerfile, judged by the CGO_ENABLED decision tree.

The Dockerfile is read into stages by dnsprobe.tools.dockerstages (dockerfile-parse: instructions,
continuation lines, ARG substitution in FROM; BuildKit heredocs cut out first). Each stage is
classified by its base image's C library (glibc, musl, none); each `go build` in a RUN line is judged
with the variables in force for that command (prefix assignments apply to one command of a `&&`
chain, `export` to the rest), and the build whose output the runtime stage copies decides cgo and
linkage. cgo's default depends on the Go release in the builder's tag (off without a C compiler only
since Go 1.20) and on cross-compilation (`FROM --platform=$BUILDPLATFORM` with `GOARCH=$TARGETARCH`:
off unless CC is set). `-extldflags -static` links statically only with `-linkmode external` (Go's
internal linker, used when only the standard library has cgo, ignores it).

Errors are what stops the image from building or the binary from starting; warnings are what bites
later (no CA bundle where the base has none, root where nothing can drop privileges); notes are worth
knowing (root on an image with a shell, an unknown base).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dnsprobe.errors import InspectError
from dnsprobe.files_io import read_limited
from dnsprobe.tools.dockerstages import (
    INSTRUCTIONS,
    Family,
    GoBuild,
    Stage,
    classify_image,
    parse_stages,
)

__all__ = [
    "INSTRUCTIONS",
    "Family",
    "Finding",
    "LintResult",
    "Stage",
    "classify_image",
    "format_lint",
    "lint_dockerfile",
    "lint_text",
    "parse_stages",
]

Severity = Literal["error", "warning", "note"]

_GLIBC_RUNTIMES = "gcr.io/distroless/base-debian12:nonroot or debian:12-slim"


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
    for stage in stages:
        if stage.unresolved:
            findings.append(
                Finding(
                    "note",
                    stage.line,
                    "unknown-base",
                    f"stage {stage.index}: unknown base: ARG {stage.unresolved} has no default",
                    f"give ARG {stage.unresolved} a default, or pass --build-arg {stage.unresolved}=...; "
                    "until then this stage's C library is unknown",
                )
            )
    if builder is not None:
        builds = _copied_builds(builder, runtime)
        for n, build in enumerate(builds):
            on, explicit, why = _cgo_setting(builder, build)
            static = on and build.external_static
            findings += _compiler_findings(builder, build.line, on, explicit)
            findings += _linker_findings(build, on)
            findings += _libc_findings(builder, runtime, build.line, on, static, explicit)
            findings += _glibc_release_findings(builder, runtime, build.line, on, static)
            if n == 0:
                cgo = on
                branch = _branch(builder, on, static) + (f" [{why}]" if why else "")
    findings += _runtime_findings(runtime)
    seen: set[tuple[int, str]] = set()
    unique = []
    for finding in findings:
        if (finding.line, finding.code) not in seen:
            seen.add((finding.line, finding.code))
            unique.append(finding)
    order = {"error": 0, "warning": 1, "note": 2}
    unique.sort(key=lambda f: (order[f.severity], f.line))
    return LintResult(
        source,
        tuple(f"{s.label}: {s.family}" for s in stages),
        builder.label if builder else None,
        runtime.label,
        cgo,
        branch,
        tuple(unique),
    )


def _copied_builds(builder: Stage, runtime: Stage) -> list[GoBuild]:
    """The builder's go builds whose output the runtime copies (all of them if none can be matched)."""
    builds = builder.go_commands()
    if builder is runtime or not builds:
        return builds
    sources: list[str] = []
    for _, _, value in runtime.copies:
        words = [w for w in value.split() if not w.startswith("--")]
        sources += words[:-1]
    matched = [b for b in builds if b.output and any(_same_path(b.output, src) for src in sources)]
    return matched or builds


def _same_path(output: str, source: str) -> bool:
    output, source = output.rstrip("/"), source.rstrip("/")
    return output == source or output.startswith(source + "/") or source.endswith("/" + output.lstrip("./"))


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


def _cgo_setting(builder: Stage, build: GoBuild) -> tuple[bool, bool, str]:
    """(cgo on?, set explicitly?, why the default went the way it did) for one go build command."""
    setting = build.cgo_setting
    if setting is not None:
        return setting == "1", True, ""
    env = build.env
    target = env.get("GOARCH", "") + env.get("GOOS", "")
    if (
        "$BUILDPLATFORM" in builder.platform.replace("{", "").replace("}", "")
        and target
        and not env.get("CC")
    ):
        return (
            False,
            False,
            "cross-compiling (--platform=$BUILDPLATFORM with GOARCH/GOOS set, no CC): cgo off",
        )
    if builder.has_c_compiler():
        return True, False, ""
    if builder.release is not None and builder.release < (1, 20):
        release = ".".join(map(str, builder.release))
        return (
            True,
            False,
            f"Go {release} turns cgo on even without a C compiler (only Go 1.20+ turns it off); the "
            "standard library's cgo parts come precompiled",
        )
    return False, False, "no C compiler in the builder: Go 1.20+ turns cgo off"


def _linker_findings(build: GoBuild, cgo: bool) -> list[Finding]:
    if not cgo or not build.extldflags_static or build.external_static:
        return []
    return [
        Finding(
            "warning",
            build.line,
            "extldflags-without-external-linking",
            "-extldflags -static without -linkmode external does not make this cgo binary static: Go's "
            "internal linker, used when only the standard library has cgo, ignores -extldflags, so the "
            "binary still needs the builder's loader",
            "add -linkmode external (-ldflags '-linkmode external -extldflags -static'), or build with "
            "CGO_ENABLED=0 if nothing needs cgo (dnsprobe cgo-deps)",
        )
    ]


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


def _libc_findings(
    builder: Stage, runtime: Stage, line: int, cgo: bool, static: bool, explicit: bool = True
) -> list[Finding]:
    if not cgo or static or builder is runtime:
        return []
    have, need = runtime.family, builder.family
    default = (
        ""
        if explicit
        else " (cgo is on by default here; only a program none of whose packages use cgo, not even net "
        "or os/user, would still link statically)"
    )
    if need == "glibc" and have == "musl" and _installs_libc6_compat(runtime):
        return [_libc6_compat_finding(builder, runtime, line)]
    if need == "glibc" and have in ("musl", "scratch", "static"):
        return [
            Finding(
                "error",
                runtime.line,
                "glibc-binary-on-" + ("musl" if have == "musl" else "no-libc"),
                f"cgo binary built on {builder.image} (glibc, line {line}) runs on {runtime.image} "
                f"({'musl' if have == 'musl' else 'no C library'}): the loader /lib64/ld-linux-x86-64.so.2 "
                f"is missing, so it fails with `exec /app: no such file or directory`{default}",
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
                "loader /lib/ld-musl-x86_64.so.1 is missing (`exec /app: no such file or directory`)"
                + default,
                "run it on alpine (the builder's release), or link statically "
                "(-ldflags '-linkmode external -extldflags -static')",
            )
        ]
    return []


def _installs_libc6_compat(stage: Stage) -> bool:
    return any(re.search(r"\bapk\b.*\badd\b.*\blibc6-compat\b", text) for _, text in stage.runs)


def _libc6_compat_finding(builder: Stage, runtime: Stage, line: int) -> Finding:
    """A glibc cgo binary on Alpine with libc6-compat: the loader is there now (a musl symlink), but the
    package fakes only libc.so.6, libcrypt, libm, libpthread, librt and libutil. Go 1.20+ links -lresolv
    for its cgo resolver; on glibc before 2.34 (Debian 11 and older) the binary keeps libresolv.so.2."""
    debian = debian_release(builder.image, builder.release)
    go_old = builder.release is not None and builder.release < (1, 20)
    fix = (
        f"run it on {_GLIBC_RUNTIMES}; or build with CGO_ENABLED=0 if no package needs cgo (dnsprobe "
        "cgo-deps); or build on golang:1.x-alpine with build-base; `dnsprobe inspect` on the binary lists "
        "its DT_NEEDED"
    )
    if debian is not None and _DEBIAN_GLIBC[debian] < (2, 34) and not go_old:
        return Finding(
            "error",
            runtime.line,
            "libresolv-on-libc6-compat",
            f"cgo binary built on {builder.image} (glibc {'.'.join(map(str, _DEBIAN_GLIBC[debian]))}, line "
            f"{line}) runs on {runtime.image} with libc6-compat: Go 1.20+ links libresolv.so.2 there, which "
            "libc6-compat does not provide, so it fails with `Error loading shared library libresolv.so.2`",
            fix,
        )
    return Finding(
        "warning",
        runtime.line,
        "glibc-binary-on-libc6-compat",
        f"cgo binary built on {builder.image} (glibc, line {line}) runs on {runtime.image} with "
        "libc6-compat: it starts only if every library and symbol it needs is one musl fakes (a Go 1.20+ "
        "build on glibc before 2.34 needs libresolv.so.2 and does not start), and then resolves names "
        "with musl's getaddrinfo, not glibc's",
        fix,
    )


# glibc per Debian release (Debian's libc6 in each: buster 2.28, bullseye 2.31, bookworm 2.36, trixie 2.41).
_DEBIAN_GLIBC = {10: (2, 28), 11: (2, 31), 12: (2, 36), 13: (2, 41)}
_DEBIAN_NAMES = {"buster": 10, "bullseye": 11, "bookworm": 12, "trixie": 13}


def debian_release(image: str, golang_release: tuple[int, int] | None = None) -> int | None:
    """The Debian release a glibc image is built on, from its name; None when the name does not say.

    golang:1.25 and later without a variant (and `golang`, `golang:latest`) are trixie
    (docker-library/repo-info repos/golang/remote/1.25.md: `debian.sh ... 'trixie'`); for older tags
    without a variant the default moved between Debian releases over the tag's life, so None.
    """
    ref = image.lower().split("@")[0]
    for name, number in _DEBIAN_NAMES.items():
        if name in ref:
            return number
    found = re.search(r"debian(\d+)\b", ref) or re.search(r"(?:^|/)debian:(\d+)", ref)
    if found and int(found[1]) in _DEBIAN_GLIBC:
        return int(found[1])
    last = ref.rsplit("/", 1)[-1]
    if last.split(":")[0] == "golang" and "alpine" not in last:
        if golang_release is None:
            tag = last.partition(":")[2]
            return 13 if tag in ("", "latest") else None
        return 13 if golang_release >= (1, 25) else None
    return None


def _glibc_release_findings(
    builder: Stage, runtime: Stage, line: int, cgo: bool, static: bool
) -> list[Finding]:
    if not cgo or static or builder is runtime or builder.family != "glibc" or runtime.family != "glibc":
        return []
    built, runs = debian_release(builder.image, builder.release), debian_release(runtime.image)
    if built is None or runs is None or _DEBIAN_GLIBC[built] <= _DEBIAN_GLIBC[runs]:
        return []
    new, old = ".".join(map(str, _DEBIAN_GLIBC[built])), ".".join(map(str, _DEBIAN_GLIBC[runs]))
    return [
        Finding(
            "warning",
            runtime.line,
            "glibc-newer-in-builder",
            f"the builder {builder.image} (line {line}) has glibc {new} (Debian {built}), the runtime "
            f"{runtime.image} glibc {old} (Debian {runs}): a cgo binary linked there may ask for newer "
            "symbol versions and fail with `version `GLIBC_2.xx' not found`",
            f"build on the runtime's release (golang:1.x-{_release_name(runs)}), or run on a Debian {built} "
            "base; `dnsprobe inspect` on the binary names the newest GLIBC_ version it needs",
        )
    ]


def _release_name(number: int) -> str:
    return next(name for name, n in _DEBIAN_NAMES.items() if n == number)


def runtime_base(image: str, family: Family) -> str | None:
    """Which modelled base (dnsprobe.binary.bases) an image is, when its name says so."""
    ref = image.lower()
    last = ref.split("@")[0].split(":")[0].rsplit("/", 1)[-1]
    if family == "scratch":
        return "scratch"
    if family == "static":
        return "distroless-static"
    if "distroless/base" in ref:
        return "distroless-base"
    if family == "musl" and last == "alpine":
        return "alpine"
    if last == "debian" or (last == "ubuntu" and "slim" in ref):
        return "debian-slim"
    return None


def _runtime_findings(runtime: Stage) -> list[Finding]:
    from dnsprobe.binary.bases import BASES

    findings: list[Finding] = []
    copied = " ".join(value for _, _, value in runtime.copies)
    installed = " ".join(text for _, text in runtime.runs)
    has_certs = "ca-certificates" in copied or "/etc/ssl/certs" in copied or "ca-certificates" in installed
    base_name = runtime_base(runtime.image, runtime.family)
    base = BASES.get(base_name or "")
    no_bundle = base is not None and not base.ca_certificates
    release = re.match(r"(\d+)\.(\d+)", runtime.image.split("@")[0].rsplit(":", 1)[-1])
    if base_name == "alpine" and release and (int(release[1]), int(release[2])) < (3, 9):
        no_bundle = True  # ca-certificates-bundle joined alpine's base set in 3.9
    if base is not None and no_bundle and not has_certs:
        how = {
            "scratch": "COPY --from=<builder> /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/",
            "debian-slim": "RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates",
            "alpine": "RUN apk add --no-cache ca-certificates",
        }.get(base.name, "install ca-certificates")
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
        # Without a shell nothing in the container can drop privileges later (no su-exec, gosu or an
        # entrypoint script): root is then for the process's whole life.
        no_shell = runtime.family in ("scratch", "static") or "distroless" in runtime.image
        findings.append(
            Finding(
                "warning" if no_shell else "note",
                where,
                "runs-as-root",
                f"the runtime stage ({runtime.image}) runs as root"
                + ("" if user else " (no USER instruction)")
                + (": nothing in it can drop privileges" if no_shell else ""),
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
        return (
            "3 (cgo, linked statically): starts on any base; glibc 2.34+ carries the files and dns NSS "
            "modules inside, any other nsswitch.conf source is dlopened from the runtime image"
        )
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
