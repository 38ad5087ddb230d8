"""`python -m dnsprobe.load.locust_main ARGS`: Locust's own command line, with every Locust process tied
to its parent's life.

dnsprobe starts Locust with PR_SET_PDEATHSIG (it dies with dnsprobe); the worker processes Locust forks
for `--processes N` would not inherit that (the kernel clears it on fork), so each forked child asks for
it again here: a SIGKILLed run leaves no Locust worker behind. Only the standard library is imported
before Locust, which monkey-patches it on import.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the worker then outlives a killed master
        return


def main() -> None:
    os.register_at_fork(after_in_child=_die_with_parent)
    runpy.run_module("locust", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
