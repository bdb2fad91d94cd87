"""Delivery: the SQLite spool (write before publish, delete on PUBACK) and the MQTT publisher.

`mqttclient` is the one place that knows paho's 1.6/2.x differences; the
collector reuses it for subscribing.
"""
