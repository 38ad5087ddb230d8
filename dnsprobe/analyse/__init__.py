"""Analyse stage: the records, Go's resolver trace and the nameserver's query log, turned into
each mode's figures (percentiles, outcome classes, wire queries, timelines).
"""
