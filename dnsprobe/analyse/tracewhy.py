"""Why a cgo-capable Go binary sent a name to the C library's resolver, from the pod's own files.

Go's net package (src/net/conf.go, nss.go, dnsconfig_unix.go) prefers cgo when any of these holds,
checked in this order; `explain` names each one that applies to a pod, and `explain_name` adds the
per-name ones:

- environment: GODEBUG netdns=cgo; LOCALDOMAIN set (even empty); RES_OPTIONS or HOSTALIASES non-empty
- resolv.conf: unreadable; an option Go does not know (`sortlist`, `no-aaaa`, `inet6`, ...); a keyword
  other than nameserver, domain, search, options, lookup (`sortlist`, `family`, ...)
- nsswitch.conf `hosts:`: a source other than files, dns, mdns* and myhostname (resolve, nis, ldap,
  wins, systemd...); files or dns with a non-default `[STATUS=action]` criterion
- per name: myhostname when the name is localhost, *.localhost, _gateway, _outbound or the host name;
  an mdns* source when the name ends in .local
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Options Go's resolv.conf parser understands (dnsconfig_unix.go); anything else sets unknownOpt.
_KNOWN_OPTIONS = frozenset(
    {"rotate", "single-request", "single-request-reopen", "use-vc", "usevc", "tcp", "trust-ad", "edns0"}
)
_KNOWN_OPTION_PREFIXES = ("ndots:", "timeout:", "attempts:", "no-reload")
_KNOWN_KEYWORDS = frozenset({"nameserver", "domain", "search", "options", "lookup"})  # lookup: OpenBSD
_CRITERION = re.compile(r"\[\s*(!?)\s*([A-Za-z]+)\s*=\s*([A-Za-z]+)\s*\]")
_DEFAULT_ACTION = {"success": "return", "notfound": "continue", "unavail": "continue", "tryagain": "continue"}


@dataclass(frozen=True)
class PodContext:
    """What the pod gave the program: None for a file that was not supplied."""

    resolv_conf: str | None = None
    nsswitch: str | None = None
    env: Mapping[str, str] | None = None
    hostname: str | None = None


def explain(context: PodContext) -> list[str]:
    """The pod-wide reasons Go would prefer cgo (for a binary that has the cgo resolver)."""
    reasons: list[str] = []
    env = context.env or {}
    godebug = env.get("GODEBUG", "")
    for item in godebug.split(","):
        key, _, value = item.strip().partition("=")
        if key == "netdns" and "cgo" in value.split("+"):
            reasons.append(f"environment: GODEBUG={godebug} forces the cgo resolver")
    if "LOCALDOMAIN" in env:
        reasons.append(f"environment: LOCALDOMAIN is set ({env['LOCALDOMAIN']!r}): Go leaves it to libc")
    for name in ("RES_OPTIONS", "HOSTALIASES"):
        if env.get(name):
            reasons.append(f"environment: {name}={env[name]!r} is set: Go leaves it to libc")
    if context.resolv_conf is not None:
        reasons += _resolv_conf_reasons(context.resolv_conf)
    if context.nsswitch is not None:
        reasons += _nsswitch_reasons(context.nsswitch)
    return reasons


def explain_name(context: PodContext, name: str) -> list[str]:
    """Reasons specific to one name (myhostname, mdns): on top of `explain`."""
    reasons: list[str] = []
    sources = [source for source, _ in _hosts_sources(context.nsswitch or "")]
    lowered = name.lower().rstrip(".")
    if "myhostname" in sources and (
        lowered in ("localhost", "_gateway", "_outbound")
        or lowered.endswith(".localhost")
        or (context.hostname and lowered == context.hostname.lower())
    ):
        reasons.append(f"nsswitch.conf: hosts has myhostname, and {name} is a name it answers")
    if any(source.startswith("mdns") for source in sources) and lowered.endswith(".local"):
        reasons.append(f"nsswitch.conf: hosts has an mdns source, and {name} ends in .local")
    return reasons


def _resolv_conf_reasons(text: str) -> list[str]:
    reasons = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        keyword, *rest = line.split()
        if keyword == "options":
            for option in rest:
                if option not in _KNOWN_OPTIONS and not option.startswith(_KNOWN_OPTION_PREFIXES):
                    reasons.append(
                        f"resolv.conf line {number}: option {option!r} is not one Go knows, so it "
                        "leaves the pod's names to libc"
                    )
        elif keyword not in _KNOWN_KEYWORDS:
            reasons.append(
                f"resolv.conf line {number}: keyword {keyword!r} is not one Go knows, so it leaves the "
                "pod's names to libc"
            )
    return reasons


def _hosts_sources(text: str) -> list[tuple[str, list[tuple[bool, str, str]]]]:
    """nsswitch.conf's hosts line as (source, [(negated, status, action), ...])."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("hosts:"):
            continue
        rest = line[len("hosts:") :]
        sources: list[tuple[str, list[tuple[bool, str, str]]]] = []
        for word in re.findall(r"\[[^\]]*\]|[^\s\[]+", rest):
            if word.startswith("["):
                if sources:
                    for found in _CRITERION.finditer(word):
                        sources[-1][1].append((found[1] == "!", found[2].lower(), found[3].lower()))
            else:
                sources.append((word.lower(), []))
        return sources
    return []


def _nsswitch_reasons(text: str) -> list[str]:
    reasons = []
    for source, criteria in _hosts_sources(text):
        if source in ("files", "dns"):
            for i, (negated, status, action) in enumerate(criteria):
                last = i == len(criteria) - 1
                default = _DEFAULT_ACTION.get(status)
                if negated or default is None or not (action == default or (last and action == "return")):
                    reasons.append(
                        f"nsswitch.conf: hosts has {source} [{'!' if negated else ''}{status.upper()}="
                        f"{action}], a non-default action Go leaves to libc"
                    )
                    break
        elif source.startswith("mdns") or source == "myhostname":
            continue  # only for some names: see explain_name
        else:
            reasons.append(f"nsswitch.conf: hosts has the source {source!r}, which only libc can ask")
    return reasons
