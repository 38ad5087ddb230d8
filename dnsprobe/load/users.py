"""How many users a load shape asks for at a moment of the run. Apart from shapes.py, which imports
locust (and so monkey-patches the standard library): the harness and tests use this without gevent."""

from __future__ import annotations

import math


def users_at(
    shape: str, t: float, *, users: int, run_time: float, ramp_seconds: float, spike_users: int
) -> int:
    """The user count `shape` asks for `t` seconds into a run of `run_time` seconds."""
    if shape == "ramp":
        span = ramp_seconds if ramp_seconds > 0 else run_time
        return max(1, min(users, math.ceil(users * t / span))) if span > 0 else users
    if shape == "spike" and run_time / 3 <= t < 2 * run_time / 3:
        return spike_users
    return users
