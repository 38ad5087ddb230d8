"""The nameserver of a docker pod, run inside the container's network namespace.

    nsenter -t <container pid> -n python -m dnsprobe.sandbox.netns_server SPEC.json

The container runs with `--network none`: its namespace has only a loopback interface, so the probe can
reach nothing but this server, which listens on the container's 127.0.0.1:53 (nsenter enters the network
namespace only; this process keeps the host's file system and writes the query log into the pod's
directory). It writes SPEC.json's `ready` file once listening and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any


async def serve(spec: dict[str, Any]) -> int:
    from dnsprobe.nameserver.group import ServerGroup

    group = ServerGroup(spec["servers"])
    await group.start()
    Path(spec["ready"]).write_text("ready\n", encoding="utf-8")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await group.stop()
    return 0


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    return asyncio.run(serve(spec))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
