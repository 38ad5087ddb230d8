"""The folder layout is the pipeline: no import cycle, and no stage imports a later one.

Read from the source with `ast` (imports inside functions count too), so the check needs no import and
cannot be fooled by lazy imports. Stages in pipeline order; a module may import its own stage, an
earlier one, or the foundation (errors, proc, modes, the DNS codec, the facts about binaries, ...). The
side commands (tools, bench) and the top (pipeline, cli) may import anything but each other's tops.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dnsprobe"

FOUNDATION = {
    "dnsprobe",
    "dnsprobe.errors",
    "dnsprobe.proc",
    "dnsprobe.durations",
    "dnsprobe.bundled",
    "dnsprobe.vocabulary",
    "dnsprobe.godebug",
    "dnsprobe.etcfiles",
    "dnsprobe.files_io",
    "dnsprobe.interrupts",
    "dnsprobe.outdirs",
    "dnsprobe.kube",
    "dnsprobe.bins",
    "dnsprobe.dockerengine",
    "dnsprobe.goresolver",
    "dnsprobe.modes",
    "dnsprobe.codec",
    "dnsprobe.binary",
    "dnsprobe.summary",
    "dnsprobe.overrides",
    "dnsprobe.scenario",
    "dnsprobe.scenario_reference",
    "dnsprobe._build",
}
STAGES = [
    "dnsprobe.build",
    "dnsprobe.nameserver",
    "dnsprobe.sandbox",
    "dnsprobe.load",
    "dnsprobe.analyse",
    "dnsprobe.judge",
    "dnsprobe.report",
]
TOP = [
    "dnsprobe.pipeline",
    "dnsprobe.results",
    "dnsprobe.rebuild",
    "dnsprobe.tools",
    "dnsprobe.bench",
    "dnsprobe.cli",
    "dnsprobe.__main__",
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule; `from mod import name` the module (graph()
            # strips a name that is not a module back to the module that defines it)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "dnsprobe" or m.startswith("dnsprobe.")}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports_of(path, name):
            while imported not in modules and "." in imported:  # `from pkg import function`
                imported = imported.rpartition(".")[0]
            if imported in modules and imported != name:
                targets.add(imported)
        edges[name] = targets
    return edges


def home(module: str) -> tuple[str, int]:
    """(group, rank): the foundation is -1, stages 0..n in order, the top n+1."""
    for group in sorted(FOUNDATION | set(STAGES) | set(TOP), key=len, reverse=True):
        if module == group or module.startswith(group + "."):
            if group in FOUNDATION:
                return group, -1
            if group in STAGES:
                return group, STAGES.index(group)
            return group, len(STAGES)
    raise AssertionError(f"{module}: not in any stage; add it to tests/test_architecture.py")


def test_every_module_has_a_home() -> None:
    for module in graph():
        home(module)


def test_no_stage_imports_a_later_one() -> None:
    wrong = []
    for module, targets in graph().items():
        group, rank = home(module)
        for target in targets:
            target_group, target_rank = home(target)
            if target_group == group:
                continue
            if rank == -1 and target_rank != -1:
                wrong.append(f"{module} (foundation) imports {target}")
            elif rank < len(STAGES) and target_rank > rank:
                wrong.append(f"{module} ({group}) imports the later {target}")
            elif group == "dnsprobe.tools" and target_group in ("dnsprobe.cli", "dnsprobe.bench"):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle() -> None:
    """Between modules; importing a package is importing its __init__, with whatever that imports."""
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in edges[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in edges:
        if module not in index:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)
