"""The shell inside a Dockerfile's RUN lines, as far as `dnsprobe lint` needs it.

Two things dockerfile-parse does not do:

- BuildKit heredocs (`RUN <<EOF` ... `EOF`, with `# syntax=docker/dockerfile:1`): `expand_heredocs` cuts
  the bodies out before parsing (keeping every other line where it was, so line numbers stay right)
  and hands them back by the line of their instruction.
- Environment scope in shell chains: in `go build -o /app . && CGO_ENABLED=0 go build -o /hc ./cmd/hc`
  the assignment applies to the second command only, while `export CGO_ENABLED=0` applies to every later
  command of the same RUN. `shell_commands` splits a script into simple commands, each with the
  variables in force for it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_HEREDOC_INSTRUCTIONS = ("RUN", "COPY", "ADD")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
_SEPARATORS = frozenset({"&&", "||", ";", "|", "&", ";;", "|&"})
_SHELLS = frozenset({"", "sh", "bash", "ash", "dash", "/bin/sh", "/bin/bash", "/bin/ash"})


@dataclass(frozen=True)
class Heredoc:
    line: int  # 1-based line of the instruction
    body: str
    shell: bool  # the body is the shell script the instruction runs (RUN <<EOF, RUN bash <<EOF)


def expand_heredocs(text: str) -> tuple[str, dict[int, Heredoc]]:
    """The Dockerfile with heredoc bodies blanked out, and the bodies by instruction line."""
    lines = text.split("\n")
    out: list[str] = []
    found: dict[int, Heredoc] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        start = len(out)  # 1-based line of this instruction
        words = line.lstrip().split(None, 1)
        markers = list(_HEREDOC.finditer(line)) if words and words[0].upper() in _HEREDOC_INSTRUCTIONS else []
        i += 1
        if not markers:
            continue
        before = line.lstrip()[len(words[0]) :].split("<<", 1)[0].strip()
        bodies: list[str] = []
        for marker in markers:
            strip_tabs, delimiter = marker[1] == "-", marker[3]
            body: list[str] = []
            while i < len(lines):
                candidate = lines[i].lstrip("\t") if strip_tabs else lines[i]
                out.append("")
                i += 1
                if candidate.strip() == delimiter:
                    break
                body.append(candidate)
            bodies.append("\n".join(body))
        shell = words[0].upper() == "RUN" and before.split(" -", 1)[0].strip() in _SHELLS
        found[start] = Heredoc(start, "\n".join(bodies), shell)
    return "\n".join(out), found


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)  # assignments in force for this command only
    text: str = ""


def shell_commands(script: str) -> list[Command]:
    """The simple commands of a shell script, each with the variables set for it (prefix assignments
    and earlier `export`s in the same script). Unparsable quoting falls back to splitting on spaces."""
    exported: dict[str, str] = {}
    commands: list[Command] = []
    joined = script.replace("\\\n", " ")
    for raw_line in joined.split("\n"):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        for words in _split_commands(line):
            prefix: dict[str, str] = {}
            rest = list(words)
            while rest and _ASSIGNMENT.match(rest[0]):
                name, value = _ASSIGNMENT.match(rest[0]).groups()  # type: ignore[union-attr]
                prefix[name] = value
                rest.pop(0)
            if rest[:1] == ["env"]:
                rest.pop(0)
                while rest and _ASSIGNMENT.match(rest[0]):
                    name, value = _ASSIGNMENT.match(rest[0]).groups()  # type: ignore[union-attr]
                    prefix[name] = value
                    rest.pop(0)
            if rest[:1] == ["export"]:
                for word in rest[1:]:
                    found = _ASSIGNMENT.match(word)
                    if found:
                        exported[found[1]] = found[2]
                continue
            if not rest:
                exported.update(prefix)  # `X=1` alone sets a shell variable for later commands
                continue
            commands.append(Command(tuple(rest), exported | prefix, " ".join(words)))
    return commands


def _split_commands(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:
        tokens = line.split()
    groups: list[list[str]] = [[]]
    for token in tokens:
        if token in _SEPARATORS or token in ("(", ")", "{", "}", "then", "do", "else", "if", "while"):
            if groups[-1]:
                groups.append([])
            continue
        groups[-1].append(token)
    return [g for g in groups if g]
