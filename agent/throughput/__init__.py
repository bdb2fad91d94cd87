"""Throughput testing: the pure parts (estimator, budget, bufferbloat grade) and one module per backend.

The probe itself is `agent.probes.throughput`; the LibreSpeed-compatible server is
`agent.throughput.server`. Backends are imported only when a test runs.
"""
