"""`netprobe web`: the regency's live view over the collector's database, served by the standard library.

Kept light on import: `settings` is read by every collector command; the server,
pages and rollup load only when `netprobe web` or `netprobe report` runs.
"""
