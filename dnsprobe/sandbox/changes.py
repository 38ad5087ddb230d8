"""`[[pod.changes]]` under a running pod: each change's files rendered up front, written at its time.

A change names resolv.conf's fields, `nsswitch_hosts`, or both (none: resolv.conf). Its files are rendered
and checked (the same grammar and loopback rule as the pod's first files) when the timers are set, so a
bad change fails before anything runs; they are written in place at `at_s` seconds from then, which the
pod's bind mounts carry to the program. `run` (each probe mode's load) and `observe` (the user's own
program) both schedule changes here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from dnsprobe.errors import DnsProbeError
from dnsprobe.sandbox.files import PodFiles, render_pod_files
from dnsprobe.scenario import Pod as PodSpec

__all__ = ["ChangeablePod", "schedule_changes"]


class ChangeablePod(Protocol):
    """What a pod offers for changes: its current files and in-place rewrites (local and docker pods)."""

    files: PodFiles

    def rewrite_resolv_conf(self, text: str) -> None: ...

    def rewrite_nsswitch_conf(self, text: str) -> None: ...


def schedule_changes(
    pod: ChangeablePod,
    spec: PodSpec,
    *,
    allow_non_loopback: bool,
    applied: Callable[[float, str], None],
    failed: Callable[[float, str], None],
) -> list[threading.Timer]:
    """Start one timer per change of `spec.changes`, counted from now. `applied(at_s, "resolv.conf")` is
    called when a change is written (its unix time is then the moment of the call), `failed(at_s, why)`
    when it could not be: a change that does not happen is never silent. Cancel the timers when the
    pod stops."""
    if not spec.changes:
        return []
    nameservers = [
        line.split()[1] for line in pod.files.resolv_conf.splitlines() if line.startswith("nameserver ")
    ]
    timers = []
    for change in spec.changes:
        files = render_pod_files(
            spec.changed(change),
            hostname="probe",
            nameservers=nameservers,  # a change keeps the pod's servers
            allow_non_loopback=allow_non_loopback,
        )
        rewrites: list[tuple[Callable[[str], None], str, str]] = []
        if change.touches_resolv_conf or not change.touches_nsswitch:
            rewrites.append((pod.rewrite_resolv_conf, files.resolv_conf, "resolv.conf"))
        if change.touches_nsswitch:
            rewrites.append((pod.rewrite_nsswitch_conf, files.nsswitch_conf, "nsswitch.conf"))

        def apply(
            rewrites: list[tuple[Callable[[str], None], str, str]] = rewrites, at: float = change.at_s
        ) -> None:
            try:
                for rewrite, text, _ in rewrites:
                    rewrite(text)
            except (DnsProbeError, OSError) as exc:
                failed(at, f"the [[pod.changes]] at {at:g} s was not applied: {exc}")
                return
            applied(at, " and ".join(name for _, _, name in rewrites))

        timer = threading.Timer(change.at_s, apply)
        timer.daemon = True
        timer.start()
        timers.append(timer)
    return timers
