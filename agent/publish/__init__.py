"""Delivery: the SQLite spool (written before any publish) and the MQTT publisher.

The paho adapter is `agent.net.mqttclient`, shared with the collector.
"""
