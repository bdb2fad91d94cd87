"""Thin network helpers the features share: one ICMP echo session, host:port and HTTP head parsing,
the ISP-hop rule, interface facts, the MQTT client adapter and secret files.

Only the Reading contract sits below this package; probes and features build on it.
"""
