"""Stop signals during a run: SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal closed) are one thing.

The first one raises KeyboardInterrupt wherever the run is (a build, a pod starting, the load), and the
pipeline then keeps what was measured. Every later one is noted and deferred: an impatient second Ctrl-C
cannot cut the summary, the report, or the figures of the mode that was running. Inside `shielded()` even
the first one is only noted; leaving the block raises it then (or, for the report, lets the caller mark
the run unfinished and write it again).

Handlers are installed only from the main thread (Python delivers signals there); elsewhere `Interrupts`
notes nothing and changes nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class Received:
    at: float  # unix time
    name: str  # SIGINT, SIGTERM, SIGHUP
    where: tuple[str, str] = ("", "")  # what `locate` said then: (stage, mode)


@dataclass
class Interrupts:
    """Context manager for a run's signal handling; `received` lists every stop signal, oldest first."""

    received: list[Received] = field(default_factory=list)
    locate: Callable[[], tuple[str, str]] = lambda: ("", "")  # where the run is, noted with each signal
    _raised: bool = False
    _shield: int = 0
    _previous: dict[int, Any] = field(default_factory=dict)

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(Received(time.time(), signal.Signals(signum).name, self.locate()))
        if not self._raised and not self._shield:
            self._raised = True
            raise KeyboardInterrupt

    @property
    def interrupted(self) -> bool:
        return bool(self.received)

    @property
    def first(self) -> Received | None:
        return self.received[0] if self.received else None

    def stop_now(self) -> None:
        """Outside a shield, a signal noted but not yet raised is raised here."""
        if self.received and not self._raised and not self._shield:
            self._raised = True
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def shielded(self, *, raise_after: bool = True) -> Iterator[None]:
        """Signals inside are noted, not raised; with `raise_after`, the first one is raised on leaving
        (when nothing was raised for an earlier one)."""
        self._shield += 1
        try:
            yield
        finally:
            self._shield -= 1
        if raise_after:
            self.stop_now()
