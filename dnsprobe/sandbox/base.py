"""What every pod backend (local namespaces, Docker) shares: where a pod's files are, how its probe is
addressed, and start/stop as a context manager."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Self


class PodBase:
    """Mixin for a pod class with `workdir` (its directory in the run) and `socket_path`."""

    workdir: Path

    @property
    def socket_path(self) -> Path:
        raise NotImplementedError

    @property
    def address(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def querylog_path(self) -> Path:
        return self.workdir / "queries.tsv"

    @property
    def trace_path(self) -> Path:
        return self.workdir / "probe.stderr"

    @property
    def log_path(self) -> Path:
        return self.workdir / "pod.log"

    def events(self) -> list[dict[str, Any]]:
        """What happened to the running pod that nobody asked for (its probe exiting, its nameserver
        dying), each {"at": unix time, "what": "probe" | "nameserver", "text"}; call before `stop`."""
        return []

    def exited(self) -> int | None:
        """The pod's exit status when it ended by itself, None while it runs."""
        return None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
