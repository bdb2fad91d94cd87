"""Throughput testing: the pure parts (estimator, budget, bufferbloat grade), one module per backend,
the LibreSpeed-compatible `server`, and `[throughput]` settings.

The probe that adapts this package is `agent.probes.throughput`. Backends are imported only when a test runs.
"""
