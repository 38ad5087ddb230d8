"""Load shapes for Locust: user counts that change during the run. Load it next to the locustfile:

    locust -f dnsprobe/load/locustfile.py,dnsprobe/load/shapes.py --headless --users 8 --run-time 60s \
        --dns-shape ramp --host unix:///tmp/dnsprobe-x/go.sock

It reads Locust's own --users and --run-time (use_common_options) and the locustfile's options:
  --dns-shape steady|ramp|spike
  --dns-ramp-seconds S    ramp: from 1 user to --users over S seconds (default: the whole run), then hold
  --dns-spike-users N     spike: N users during the middle third of the run, --users before and after

Open loop is not a shape of users but of lookups: see --dns-user-rate in the locustfile.
Kept apart from the locustfile so that plain `locust -f locustfile.py` keeps the web UI's own user count.
"""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape

from dnsprobe.load.users import users_at


class DnsProbeShape(LoadTestShape):
    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        runner: Any = self.runner  # set by Locust before the first tick
        options = runner.environment.parsed_options
        run_time = float(options.run_time or 0)
        t: float = self.get_run_time()  # type: ignore[no-untyped-call]  # locust leaves it untyped
        if run_time and t >= run_time:
            return None
        users = int(options.num_users or 1)
        spike = int(options.dns_spike_users or users * 4)
        n = users_at(
            options.dns_shape,
            t,
            users=users,
            run_time=run_time,
            ramp_seconds=float(options.dns_ramp_seconds or 0),
            spike_users=spike,
        )
        return n, float(max(n, 1) * 10)  # spawn fast: the shape, not the spawn rate, sets the pace
