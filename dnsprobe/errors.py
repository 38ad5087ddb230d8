"""The exception tree. The CLI catches `DnsProbeError`, prints its one-line message and exits 2.

    DnsProbeError
     ├── ScenarioError     a scenario file is wrong (file, field, what to do)
     ├── BuildError        a probe could not be built (mode, command, compiler output)
     ├── SandboxError      a pod could not be set up or its probe did not start
     │    └── DockerError  the Docker engine is unreachable, an image is missing or does not build
     ├── NameserverError   the nameserver could not start (address taken, bad record)
     ├── LoadError         the load generator failed
     ├── InspectError      a file given to inspect, lint or cgo-deps is not what it should be
     ├── ManifestError     a Kubernetes manifest has no pod template, no such container, bad YAML
     └── ToolMissing       an external tool (musl-gcc, unshare, dnsperf...) is not installed

Anything else escaping to the CLI is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path


class DnsProbeError(Exception):
    """Base class: a problem with the input or the environment, explained in one line."""


class ScenarioError(DnsProbeError):
    def __init__(self, path: object, field: str, message: str) -> None:
        self.path = path
        self.field = field
        self.message = message
        where = f"{path}: {field}" if field else f"{path}"
        super().__init__(f"{where}: {message}")


class BuildError(DnsProbeError):
    pass


class SandboxError(DnsProbeError):
    pass


class NameserverError(DnsProbeError):
    pass


class LoadError(DnsProbeError):
    pass


class InspectError(DnsProbeError):
    pass


class ManifestError(DnsProbeError):
    """A Kubernetes manifest given to `pod render` or `[pod] manifest` cannot be turned into a pod."""


class DockerError(SandboxError):
    """The Docker engine is not reachable, or an image is missing or cannot be built."""


class ToolMissing(DnsProbeError):
    def __init__(self, tool: str, why: str, install: str) -> None:
        self.tool = tool
        super().__init__(f"{tool} not found ({why}); install it with: {install}")


class DiskFull(DnsProbeError):
    """The disk filled up while writing: one line that says where what was recorded so far is."""

    def __init__(self, path: object, run_dir: Path | None) -> None:
        if run_dir is None or not (run_dir / "records.sqlite").exists():
            text = f"no space left on the device writing {path}; nothing was recorded: free some space"
        else:
            text = (
                f"no space left on the device writing {path}; every lookup recorded so far is in "
                f"{run_dir / 'records.sqlite'}: free some space, then `dnsprobe report {run_dir}` writes "
                "the summary and report from it"
            )
        super().__init__(text)


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC or EDQUOT, or SQLite's `database or disk is full`, anywhere in the exception's causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL:
            return True
        if isinstance(seen, sqlite3.Error) and "full" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
