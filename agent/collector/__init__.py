"""The regency's collector: MQTT in, validated Readings stored exactly once, a fleet view out.

Pure parts (`fleet`, `htmlview`; the checks are the shared `agent.reading.validate`) are
kept apart from I/O (`store/`, `service`) so the logic is tested without a broker or a database.
"""
