"""Facts about Go's resolver that the rules, the twin, the trace and `observe` all judge by: what moves a
cgo-capable binary from Go's own resolver to getaddrinfo (net/conf.go, net/dnsconfig_unix.go).

- resolv.conf: Go reads `nameserver`, `domain`, `search` and `options`; it knows the options below
  (`ndots:N`, `timeout:N`, `attempts:N` with a value). Any other option sets "unknown option", and a
  cgo-capable build then prefers cgo.
- nsswitch.conf: a `hosts:` line with a source other than `files` and `dns` hands lookups to cgo.
- environment: `LOCALDOMAIN` set (even empty), or `RES_OPTIONS` or `HOSTALIASES` non-empty.
"""

from __future__ import annotations

from typing import Final

GO_RESOLV_OPTIONS: Final = frozenset(
    {
        "ndots",
        "timeout",
        "attempts",
        "rotate",
        "single-request",
        "single-request-reopen",
        "use-vc",
        "usevc",
        "tcp",
        "trust-ad",
        "edns0",
        "no-reload",
    }
)
GO_NSS_SOURCES: Final = frozenset({"files", "dns"})
CGO_ENV: Final = ("LOCALDOMAIN", "RES_OPTIONS", "HOSTALIASES")


def option_known(option: str) -> bool:
    """Whether Go's resolv.conf parser knows this option (`ndots:5` by its name)."""
    return option.partition(":")[0] in GO_RESOLV_OPTIONS
