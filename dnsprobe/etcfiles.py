"""The grammar of what a scenario writes into a pod's files, checked value by value.

A scenario's `pod.options`, `pod.search`, `pod.hosts`, `pod.nsswitch_hosts` and `pod.env` land verbatim in
the pod's /etc/resolv.conf, /etc/hosts, /etc/nsswitch.conf and the probe's environment. A newline inside
one of them would be a second line of the file, for example a `nameserver` line that sends the probe's
queries somewhere else. So each value must be exactly one thing of its file's grammar:

- a resolv.conf option: one token, `name` or `name:value` (`ndots:2`, `no-aaaa`, `single-request-reopen`);
- a search domain: one domain name (labels of letters, digits, `-` and `_`);
- a hosts line: an IP address and one or more host names, optionally a `# comment`, or a comment alone;
- an nsswitch source list: sources (`files`, `dns`, `myhostname`) and actions (`[NOTFOUND=return]`,
  `[!UNAVAIL=continue success=return]`);
- an environment variable: a name of letters, digits and `_` not starting with a digit (and not the
  dynamic loader's `LD_*`, which would load other code into the probe), a value without NUL;
- a nameserver address: an IP address (an IPv6 zone index, `%eth0`, of letters, digits, `.`, `_`, `-`).

Each `check_*` function returns None when the value is fine, else what is wrong with it, in words; the
scenario model turns that into `FILE: field: message`. `dnsprobe.sandbox.files` checks the rendered files
once more as a whole before any pod starts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

Check = Callable[[str], "str | None"]

_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*(?::[A-Za-z0-9_.+-]*)?")
_LABEL = re.compile(r"[A-Za-z0-9_*](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})")
_SOURCE = re.compile(r"[A-Za-z0-9_-]+")
_STATUS = ("success", "notfound", "unavail", "tryagain")
_ACTIONS = ("return", "continue", "merge")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ZONE_INDEX = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _control(value: str) -> str | None:
    """The first control character (newline, tab, NUL...) as a person would write it, or None."""
    found = _CONTROL.search(value)
    return None if found is None else repr(found.group())


def check_option(value: str) -> str | None:
    """One resolv.conf option token."""
    if not value:
        return "an empty option"
    bad = _control(value)
    if bad:
        return f"option {value!r} contains {bad}: one option per list entry, on one line"
    if " " in value:
        return f"option {value!r} contains a space: one option per list entry, e.g. ['ndots:2', 'edns0']"
    if len(value) > 64 or not _OPTION.fullmatch(value):
        return f"{value!r} is not a resolv.conf option (name or name:value, e.g. 'edns0', 'ndots:2')"
    return None


def check_domain(value: str) -> str | None:
    """One search-list domain."""
    bad = _control(value)
    if bad:
        return f"search domain {value!r} contains {bad}: one domain per list entry"
    labels = value.rstrip(".").split(".")
    if len(value) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return f"{value!r} is not a domain name"
    return None


def check_address(value: str) -> str | None:
    """A nameserver or hosts-file address: an IP address, nothing around it."""
    bad = _control(value)
    if bad or " " in value:
        return f"address {value!r} contains {bad or 'a space'}: give one IP address"
    plain, _, zone = value.partition("%")
    try:
        ipaddress.ip_address(plain)
    except ValueError:
        return f"address {value!r} is not an IP address"
    if "%" in value and (":" not in plain or not _ZONE_INDEX.fullmatch(zone)):
        return f"address {value!r}: a zone index (%eth0) needs an IPv6 address and an interface name"
    return None


def check_hosts_line(value: str) -> str | None:
    """One /etc/hosts line: `ADDRESS NAME [NAME...] [# comment]`, or a comment alone."""
    bad = _control(value.replace("\t", " "))
    if bad:
        return f"hosts line {value!r} contains {bad}: one line per list entry"
    entry, _, _comment = value.partition("#")
    fields = entry.split()
    if not fields:
        return None if value.strip().startswith("#") else "an empty hosts line"
    if len(fields) < 2:
        return f"hosts line {value!r} needs an address and at least one name, e.g. '192.0.2.9 api.test'"
    problem = check_address(fields[0])
    if problem:
        return f"hosts line {value!r}: {problem}"
    for name in fields[1:]:
        if not _HOSTNAME.fullmatch(name):
            return f"hosts line {value!r}: {name!r} is not a host name"
    return None


def check_nsswitch_sources(value: str) -> str | None:
    """The sources of nsswitch.conf's `hosts:` line, e.g. `files dns` or `files [NOTFOUND=return] dns`."""
    bad = _control(value.replace("\t", " "))
    if bad:
        return f"{value!r} contains {bad}: the hosts sources are one line"
    tokens = re.findall(r"\[[^\]]*\]|[^\s\[\]]+|[\[\]]", value)
    if not tokens:
        return "name at least one source, e.g. 'files dns'"
    if tokens[0].startswith("["):
        return f"{value!r} starts with an action; a source comes first, e.g. 'files [NOTFOUND=return] dns'"
    for token in tokens:
        if token.startswith("["):
            problem = _check_action(token)
            if problem:
                return f"{value!r}: {problem}"
        elif not _SOURCE.fullmatch(token):
            return f"{value!r}: {token!r} is not a source name (files, dns, myhostname, ...)"
    return None


def _check_action(token: str) -> str | None:
    items = token[1:-1].split() if token.endswith("]") else []
    if not items:
        return f"{token!r} is not an action like [NOTFOUND=return]"
    for item in items:
        status, equals, action = item.lstrip("!").partition("=")
        if not equals or status.lower() not in _STATUS or action.lower() not in _ACTIONS:
            return (
                f"{item!r} in {token!r} is not STATUS=action (status: {', '.join(_STATUS)}; "
                f"action: {', '.join(_ACTIONS)})"
            )
    return None


def check_env_name(value: str) -> str | None:
    if not _ENV_NAME.fullmatch(value):
        return f"{value!r} is not an environment variable name (letters, digits and _, not a digit first)"
    if value.startswith("LD_"):
        # LD_PRELOAD and friends load other code into the probe, which (kind = 'external') shares the
        # host's network: nothing in a scenario may run code of its own choosing there
        return f"{value} is the dynamic loader's; a scenario cannot set it (it loads code into the probe)"
    return None


def check_env_value(name: str, value: str) -> str | None:
    if "\x00" in value:
        return f"the value of {name} contains a NUL character, which no environment can hold"
    return None
