"""`netprobe diagnose`: the technician's checks. `verdicts` holds the pure rules; `run` runs the
probes once and renders the result in en/id; `link` and `throughput` are the later checks."""
