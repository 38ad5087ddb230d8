"""GODEBUG merging: the harness's trace level never undoes the program's own resolver choice."""

from __future__ import annotations

import pytest

from dnsprobe import godebug


@pytest.mark.parametrize(
    ("user", "ours", "merged"),
    [
        ("", "netdns=2", "netdns=2"),
        ("netdns=cgo", "netdns=2", "netdns=cgo+2"),  # the scenario's own choice survives the trace level
        ("netdns=go+1", "netdns=+2", "netdns=go+2"),
        ("netdns=cgo", "netdns=go+2", "netdns=go+2"),  # a godebug-go mode is the experiment: it wins
        ("netedns0=0,netdns=cgo", "netdns=2", "netedns0=0,netdns=cgo+2"),
        ("netdns=go,netdns=cgo", "netdns=2", "netdns=cgo+2"),  # Go takes the last of a repeated key
        ("x509sha1=1", "netdns=2", "x509sha1=1,netdns=2"),
    ],
)
def test_merge(user: str, ours: str, merged: str) -> None:
    assert godebug.merge(user, ours) == merged


def test_parts() -> None:
    assert godebug.netdns_parts("cgo+2") == ("cgo", 2)
    assert godebug.netdns_parts("2") == ("", 2)
    assert godebug.netdns_parts("go") == ("go", 0)
