"""The MQTT publisher: one thread that drains the spool to the broker, in order, ack-then-delete.

Everything it sends comes from the spool (the daemon appends, then wakes it),
so there is one path for live readings and for replay after an outage. A row
is deleted only when its PUBACK arrives; a connection lost with publishes in
flight simply replays them from the spool (duplicates carry the same `id`).
Replay is paced by the in-flight window (`mqtt.max_inflight`), which adapts
to the link's round trip, and optionally by `mqtt.replay_rate`.

Failures (unreachable broker, refused login, TLS refused, ACL denial) are
logged once each, with what to check; the agent keeps spooling and retries
with capped exponential backoff and jitter. Never a tight reconnect loop.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import sqlite3
import ssl
import threading
import time
from typing import Any, Optional

from agent import __version__, clock
from agent.config import MqttConfig
from agent.net.mqttclient import NOT_AUTHORIZED, BrokerUrl, ConnectOptions, MqttClient, Will
from agent.publish.spool import Spool
from agent.reading import topics

log = logging.getLogger(__name__)

IDLE_LOOP_S = 0.25
CONNACK_TIMEOUT_S = 15.0
OFFLINE_ACK_WAIT_S = 0.5


class Backoff:
    """Capped exponential backoff with "equal jitter": each delay is in [d/2, d], d doubling to the cap."""

    def __init__(self, base: float, cap: float, rng: Optional[random.Random] = None) -> None:
        self.base, self.cap = base, cap
        self.rng = rng or random.Random()
        self.failures = 0

    def next(self) -> float:
        d = min(self.cap, self.base * (2 ** min(self.failures, 30)))
        self.failures += 1
        return self.rng.uniform(d / 2, d)

    def reset(self) -> None:
        self.failures = 0


@dataclasses.dataclass(frozen=True)
class PublisherSettings:
    mqtt: MqttConfig
    node: str
    site: dict[str, Any]
    config_digest: str = ""
    announce: bool = True  # retained online status, last will, offline status on stop
    client_id: str = ""  # default: the node id


def status_payload(state: str, settings: PublisherSettings, uptime_s: float, spool: Spool) -> bytes:
    stats = spool.stats()
    body = {
        "state": state,
        "node": settings.node,
        "version": __version__,
        "ts": clock.iso_utc(time.time()),
        "uptime_s": round(uptime_s),
        "config": settings.config_digest,
        "spool_depth": stats.rows,
        "dropped": stats.dropped,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def offline_payload(node: str) -> bytes:
    return json.dumps({"state": "offline", "node": node}, separators=(",", ":")).encode()


class _Session:
    """What one connection knows: its CONNACK, the publishes in flight, the acks not yet applied."""

    def __init__(self) -> None:
        self.connack: Optional[tuple[bool, str, bool]] = None
        self.lost: Optional[str] = None
        self.inflight: dict[int, tuple[int, str]] = {}  # mid -> (row id, topic); row id 0 = status
        self.acked: list[int] = []
        self.denied: dict[str, str] = {}  # topic -> reason
        self.last_id = 0
        self.more = True  # the spool may hold rows after last_id


class Publisher:
    def __init__(
        self,
        settings: PublisherSettings,
        spool_file: str,
        max_rows: int,
        max_bytes: int,
        started_mono: Optional[float] = None,
    ) -> None:
        self.settings = settings
        self.cfg = settings.mqtt
        self.url = BrokerUrl.parse(self.cfg.broker)
        self.spool_file = spool_file
        self.limits = (max_rows, max_bytes)
        self.started_mono = started_mono if started_mono is not None else time.monotonic()
        self.status_topic = topics.status_topic(self.cfg.topic, settings.node, settings.site)
        self.backoff = Backoff(self.cfg.reconnect_min, self.cfg.reconnect_max)
        self.connected = False
        self.crashed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drained = threading.Event()
        self._drain_only = False
        self._stop_deadline = 0.0
        self._last_report: Optional[str] = None
        self._reported_denials: set[str] = set()
        self._tokens = 0.0
        self._status_due = False
        self._thread = threading.Thread(target=self._main, name="mqtt-publisher", daemon=True)

    # -- control (any thread) ----------------------------------------------
    def start(self) -> Publisher:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def refresh_status(self, config_digest: str) -> None:
        """A reloaded config that needs no new connection: just announce its digest."""
        self.settings = dataclasses.replace(self.settings, config_digest=config_digest)
        self._status_due = True
        self._wake.set()

    def alive(self) -> bool:
        return self._thread.is_alive() and not self.crashed

    def stop(self, timeout: float) -> None:
        """Flush what can be flushed within `timeout`, announce offline, disconnect."""
        self._stop_deadline = time.monotonic() + max(0.0, timeout - OFFLINE_ACK_WAIT_S - 0.2)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Deliver the whole spool and return True, or False when `timeout` passes first (spool flush)."""
        self._drain_only = True
        self.start()
        done = self._drained.wait(timeout)
        self.stop(2.0)
        return done

    # -- the publisher thread ------------------------------------------------
    def _main(self) -> None:
        spool = Spool(self.spool_file, *self.limits, durable=False)
        try:
            while not self._stop.is_set():
                self._session(spool)
                self.connected = False
                if self._stop.is_set():
                    break
                delay = self.backoff.next()
                log.debug("next connection attempt to %s in %.1f s", self.url, delay)
                self._stop.wait(delay)
        except Exception:
            self.crashed = True
            log.exception("the MQTT publisher stopped on an unexpected error")
        finally:
            self.connected = False
            spool.close()

    def _report(self, message: str, level: int = logging.ERROR) -> None:
        """Each distinct problem once; repeats go to debug."""
        if message != self._last_report:
            log.log(level, "%s", message)
            self._last_report = message
        else:
            log.debug("%s", message)

    def _options(self) -> ConnectOptions:
        will = None
        if self.settings.announce:
            will = Will(self.status_topic, offline_payload(self.settings.node), qos=1, retain=True)
        return ConnectOptions(
            url=self.url,
            client_id=self.settings.client_id or self.settings.node,
            keepalive=self.cfg.keepalive,
            protocol=self.cfg.protocol,
            persistent=self.cfg.persistent_session,
            ca_file=self.cfg.ca_file,
            cert_file=self.cfg.cert_file,
            key_file=self.cfg.key_file,
            username=self.cfg.username,
            password=self.cfg.password() if self.cfg.username else "",
            will=will,
        )

    def _session(self, spool: Spool) -> None:
        s = _Session()
        try:
            client = MqttClient(self._options())
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._report(f"cannot set up the MQTT client for {self.url}: {exc}")
            return
        client.on_connect = lambda ok, reason, present: setattr(s, "connack", (ok, reason, present))
        client.on_disconnect = lambda reason: setattr(s, "lost", reason)
        client.on_publish = lambda mid, code: self._on_publish(s, mid, code)
        try:
            client.connect()
        except ssl.SSLCertVerificationError as exc:
            self._report(
                f"TLS handshake with {self.url} refused: certificate verify failed ({exc.verify_message}); "
                "check mqtt.ca_file and that the broker's certificate names this host"
            )
            return
        except ssl.SSLError as exc:
            self._report(f"TLS handshake with {self.url} failed: {exc.reason or exc}")
            return
        except OSError as exc:
            self._report(
                f"cannot reach broker {self.url}: {exc.strerror or exc}; spooling, retrying with backoff",
                logging.WARNING,
            )
            return
        try:
            if self._await_connack(client, s):
                self._publish_loop(client, s, spool)
        except (ConnectionError, sqlite3.Error) as exc:  # paho refused a publish, or the spool is unwell
            self._report(f"publishing to {self.url} interrupted: {exc}; retrying with backoff")
        finally:
            client.close()

    def _await_connack(self, client: MqttClient, s: _Session) -> bool:
        deadline = time.monotonic() + CONNACK_TIMEOUT_S
        while s.connack is None:
            rc = client.loop(0.2)
            if s.connack is not None:  # a refusal arrives together with the closed connection
                break
            if rc != 0 or time.monotonic() > deadline or self._stop.is_set():
                self._report(f"broker {self.url} closed the connection before accepting it ({s.lost or 'timeout'})")
                return False
        ok, reason, present = s.connack
        if not ok:
            self._report(
                f"broker {self.url} refused the connection: {reason}; check mqtt.username and the password "
                f"(mqtt.password_file or ${self.cfg.password_env}); retrying with backoff"
            )
            return False
        self.backoff.reset()
        self._last_report = None
        self.connected = True
        log.info("connected to %s as %s (session present: %s)", self.url, client.opts.client_id, present)
        return True

    def _on_publish(self, s: _Session, mid: int, code: Optional[int]) -> None:
        row_id, topic = s.inflight.pop(mid, (0, ""))
        if code is not None and code >= 0x80:
            s.denied[topic] = "not authorized" if code == NOT_AUTHORIZED else f"reason code 0x{code:02x}"
            if topic not in self._reported_denials:
                self._reported_denials.add(topic)
                log.error(
                    "broker %s denied publishing to '%s' (%s): check its ACL for this node; "
                    "those readings stay in the spool",
                    self.url, topic, s.denied[topic],
                )  # fmt: skip
            return
        if row_id:
            s.acked.append(row_id)

    def _publish_loop(self, client: MqttClient, s: _Session, spool: Spool) -> None:
        next_status = 0.0
        last_tick = time.monotonic()
        while True:
            now = time.monotonic()
            stopping = self._stop.is_set()
            if self.settings.announce and not stopping and (now >= next_status or self._status_due):
                self._status_due = False
                self._publish(client, s, self.status_topic, self._status(spool, "online"), retain=True)
                interval = self.cfg.status_interval
                next_status = now + interval if interval > 0 else float("inf")
            self._refill_tokens(now - last_tick)
            last_tick = now
            if self._wake.is_set():
                self._wake.clear()
                s.more = True
            if s.more and len(s.inflight) < self.cfg.max_inflight:
                self._send_pending(client, s, spool)
            rc = client.loop(IDLE_LOOP_S if not s.more or len(s.inflight) >= self.cfg.max_inflight else 0.01)
            if s.acked:
                spool.delete(s.acked)
                s.acked = []
            if rc != 0:
                self._report(
                    f"lost the connection to {self.url} ({s.lost or 'connection closed'}); spooling, retrying",
                    logging.WARNING,
                )
                return
            idle = not s.more and not s.inflight
            if idle and self._drain_only and not spool.pending(0, 1):
                self._drained.set()
            if stopping and (idle or time.monotonic() >= self._stop_deadline):
                self._goodbye(client, s)
                return

    def _send_pending(self, client: MqttClient, s: _Session, spool: Spool) -> None:
        room = self.cfg.max_inflight - len(s.inflight)
        if self.cfg.replay_rate > 0:
            room = min(room, int(self._tokens))
            if room <= 0:
                return
        rows = spool.pending(s.last_id, room)
        s.more = len(rows) == room
        for row in rows:
            s.last_id = row.id
            if row.topic in s.denied:
                continue
            self._publish(client, s, row.topic, row.payload, row_id=row.id)
            self._tokens -= 1

    def _refill_tokens(self, elapsed: float) -> None:
        rate = self.cfg.replay_rate
        if rate > 0:
            self._tokens = min(max(1.0, rate), self._tokens + elapsed * rate)

    def _publish(
        self, client: MqttClient, s: _Session, topic: str, payload: bytes, *, row_id: int = 0, retain: bool = False
    ) -> None:
        mid = client.publish(topic, payload, qos=self.cfg.qos, retain=retain)
        if self.cfg.qos == 0:
            if row_id:
                s.acked.append(row_id)
            return
        s.inflight[mid] = (row_id, topic)

    def _status(self, spool: Spool, state: str) -> bytes:
        return status_payload(state, self.settings, time.monotonic() - self.started_mono, spool)

    def _goodbye(self, client: MqttClient, s: _Session) -> None:
        """A clean stop: the will is not sent on DISCONNECT, so say offline ourselves."""
        if self.settings.announce:
            self._publish(client, s, self.status_topic, offline_payload(self.settings.node), retain=True)
            deadline = time.monotonic() + OFFLINE_ACK_WAIT_S
            while s.inflight and time.monotonic() < deadline and client.loop(0.05) == 0:
                pass
        client.disconnect()
        client.loop(0.05)
