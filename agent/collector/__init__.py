"""The regency's collector: MQTT in, validated Readings stored exactly once, a fleet view out.

Pure parts (`validate`, `fleet`, `htmlview`) are kept apart from I/O (`store`,
`store_pg`, `service`) so the logic is tested without a broker or a database.
"""
