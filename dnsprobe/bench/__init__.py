"""Benchmarks behind `dnsprobe bench ...`: each prints its figures and ends with `ratio: <number>`."""
