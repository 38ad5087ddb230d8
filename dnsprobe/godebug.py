"""GODEBUG as Go reads it: comma-separated `key=value` settings where a repeated key takes its last value,
and `netdns`, whose value is a resolver (`go`, `cgo`), a debug level (`1`, `2`), or both (`cgo+2`).

The harness adds `netdns=2` (or `+2`) to every program it runs so that Go prints its resolver choice.
Appending that to the program's own GODEBUG would silently undo a `netdns=cgo` of its own: Go takes the
last `netdns`, a bare level, and falls back to its default choice. `merge` keeps the resolver the program
chose unless the harness chooses one itself (the godebug-go/godebug-cgo modes), and the higher level.
"""

from __future__ import annotations


def parse(text: str) -> dict[str, str]:
    """`a=1,b=2` as a dict in order; the last of a repeated key wins, as in Go."""
    out: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.strip().partition("=")
        if sep and key:
            out.pop(key, None)
            out[key] = value
    return out


def netdns_parts(value: str) -> tuple[str, int]:
    """("go" | "cgo" | "", debug level) of a netdns value: `cgo+2` -> ("cgo", 2), `2` -> ("", 2)."""
    resolver, level = "", 0
    for part in value.split("+"):
        if part.isdigit():
            level = max(level, int(part))
        elif part:
            resolver = part
    return resolver, level


def netdns_value(resolver: str, level: int) -> str:
    if resolver and level:
        return f"{resolver}+{level}"
    return resolver or str(level)


def merge(user: str, ours: str) -> str:
    """The program's own settings, with ours added: ours win for every key but netdns, where the resolver
    is ours if we name one, else the program's, and the debug level is the higher of the two."""
    merged = parse(user)
    for key, value in parse(ours).items():
        if key == "netdns" and "netdns" in merged:
            own_resolver, own_level = netdns_parts(merged["netdns"])
            resolver, level = netdns_parts(value)
            value = netdns_value(resolver or own_resolver, max(level, own_level))
        merged.pop(key, None)
        merged[key] = value
    return ",".join(f"{key}={value}" for key, value in merged.items())
