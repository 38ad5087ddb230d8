"""Side commands that stand apart from the run pipeline: inspect, lint, cgo-deps, compare, observe."""
