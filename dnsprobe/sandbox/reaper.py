"""`python -m dnsprobe.sandbox.reaper CONTAINER_ID`: removes a docker pod's container once dnsprobe is
gone, however it went (SIGKILL included), so no probe container keeps running without its run.

The pod starts this watchdog with a pipe on its stdin and keeps the write end. The pipe reaches end of
file when the pod closes it or when dnsprobe dies (the kernel closes its descriptors either way): a pod
that stopped cleanly writes `done` first, and the watchdog just exits; otherwise it removes the
container (`docker rm -f`). It runs in a session of its own, so a Ctrl-C at the terminal does not take it
down before it has done its work.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import IO

from dnsprobe import proc

DONE = b"done\n"


def start(container_id: str) -> subprocess.Popen[bytes]:
    """The watchdog for one container; write `DONE` to its stdin and close it when the container is
    gone (`finish`)."""
    return proc.spawn(  # it must outlive dnsprobe: that is its whole point
        [sys.executable, "-m", "dnsprobe.sandbox.reaper", container_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        new_session=True,
        cwd="/",
        dies_with_parent=False,
    )


def finish(watchdog: subprocess.Popen[bytes]) -> None:
    """The container was removed: the watchdog exits without doing anything."""
    if watchdog.stdin is not None:
        try:
            watchdog.stdin.write(DONE)
            watchdog.stdin.close()
        except OSError:
            pass
    try:
        watchdog.wait(timeout=10)
    except subprocess.TimeoutExpired:
        watchdog.kill()
        watchdog.wait()


def watch(container_id: str, stdin: IO[bytes]) -> int:
    said = stdin.read()  # blocks until the pod closes the pipe or dnsprobe dies
    if said == DONE:
        return 0
    docker = "docker"
    for candidate in ("/usr/bin/docker", "/usr/local/bin/docker"):
        if Path(candidate).exists():
            docker = candidate
    # Nobody is left to tell if this fails (dnsprobe is gone): run it plainly, status as our exit code.
    done = proc.run_plain([docker, "rm", "-f", container_id], timeout=60)
    return done.returncode


if __name__ == "__main__":
    sys.exit(watch(sys.argv[1], sys.stdin.buffer))
