"""Load stage: Locust drives the probe; every lookup is reported to Locust and recorded on disk.

This package never imports locust at module level (importing locust monkey-patches the standard library
with gevent); Locust runs in its own process: `runner.run_load` starts it on `locustfile.py`, which also
works on its own: `locust -f dnsprobe/load/locustfile.py --host unix:///path/probe.sock`.
"""
