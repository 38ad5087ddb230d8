"""dnsprobe: how DNS behaves for a Go binary, in a pod, under load, when the nameserver misbehaves.

The pipeline, one module or subpackage per stage (data only moves forward):

    scenario  -> plan: modes x pod x load x nameserver behaviour
    build     -> one probe binary per mode (cached)
    nameserver-> the embedded, query-logging nameserver
    sandbox   -> one pod per mode (user + mount + network namespaces)
    load      -> Locust drives the probe; every lookup recorded as it happens
    trace / analysis -> what the resolver did, per mode
    report    -> charts, report.html / report.md / summary.json, checks
"""

__version__ = "0.1.0"
