"""The MQTT publisher: one thread that drains the spool to the broker, in order, and confirms.

Everything it sends comes from the spool (the daemon appends, then wakes it),
so there is one path for live readings and for replay after an outage. With
`mqtt.confirm = "collector"` (the default) a row the broker has taken (PUBACK)
is only *sent*; it is deleted when the collector's retained ack on
`netprobe/ack/{node}` covers its seq, i.e. once it is in the collector's
database (docs/delivery.md). With `"broker"` the PUBACK deletes it, as before.

A sent row no ack covers is sent again, same `id`, once it is
`mqtt.confirm_timeout` old *and* a row sent after it has been confirmed (so it
was lost, not slow: a collector draining a queued backlog is not answered with
a second copy of it). When nothing is confirmed at all, one row a timeout goes
as a probe; when the probe is confirmed, everything sent before it follows.
A connection lost with publishes in flight replays them at once. Replay is
paced by the in-flight window (`mqtt.max_inflight`) and `mqtt.replay_rate`.

With `mqtt.batch = true` (the default) waiting rows go as compressed batches
(`agent.publish.batch`, docs/data-cost.md): when the oldest has waited
`mqtt.batch_s`, at once when the daemon says a Reading is a state change, and
back to back (two in flight) for a backlog. A batch is taken, confirmed and
re-sent row by row, like single Readings. The bytes the connection moves are
counted from its socket's TCP_INFO into the data ledger (`agent.usage`); when
the budget is spent (`paused`) the publisher says offline and stays away.

Failures (unreachable broker, refused login, TLS refused, ACL denial, readings
the collector never confirms) are logged once each, with what to check; the
agent keeps spooling and retries with capped exponential backoff and jitter.
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
from agent.publish import batch as batching
from agent.publish.spool import NOT_CONFIRMED, Row, Spool, delivery_state
from agent.reading import topics
from agent.reading.acks import Ack
from agent.reading.acks import decode as decode_ack
from agent.reading.batch import wire_size
from agent.usage import wire
from agent.usage.meter import REPORT, Meter

log = logging.getLogger(__name__)

IDLE_LOOP_S = 0.25
CONNACK_TIMEOUT_S = 15.0
OFFLINE_ACK_WAIT_S = 0.5
ACK_GRACE_S = 0.3  # after the SUBACK, for the retained ack that follows it
RESCAN_S = 1.0  # how often to look for late confirmations and re-sends, at most
BATCH_WINDOW = 2  # batches in flight at once: a backlog goes back to back, paced by the round trip


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
    meter: Optional[Meter] = dataclasses.field(default=None, compare=False)  # counts the bytes (agent.usage)


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
        "sent": stats.sent,
        "unconfirmed_s": round(stats.unconfirmed_s()),
        "delivery": delivery_state(settings.mqtt.confirm, settings.mqtt.confirm_timeout, stats),
    }
    if settings.meter is not None and settings.meter.budget:
        body.update(data_mb=round(settings.meter.month() / 1e6, 3), data_level=settings.meter.step)
    return json.dumps(body, separators=(",", ":")).encode()


def offline_payload(node: str, why: str = "") -> bytes:
    body = {"state": "offline", "node": node, **({"data_level": why} if why else {})}
    return json.dumps(body, separators=(",", ":")).encode()


class _Session:
    """What one connection knows: its CONNACK, the publishes in flight, the answers not yet applied."""

    def __init__(self) -> None:
        self.connack: Optional[tuple[bool, str, bool]] = None
        self.lost: Optional[str] = None
        self.inflight: dict[int, tuple[int, str, bool]] = {}  # mid -> (row id, topic, re-send); row id 0 = status
        self.batches: dict[int, tuple[int, ...]] = {}  # mid -> the row ids of a batch in flight
        self.counted: Optional[wire.TcpCounts] = None  # the socket's counts already in the ledger
        self.backlog = True  # rows waiting when the connection opened go at once, as batches
        self.taken: list[tuple[int, bool]] = []  # (row id, re-send) the broker took (PUBACK)
        self.refused: list[int] = []  # row ids the broker refused (ACL): tried again later
        self.acks: list[tuple[str, Ack]] = []  # (node, ack) received
        self.ack_topics: dict[str, str] = {}  # topic -> node
        self.subscribing: dict[int, str] = {}  # SUBSCRIBE mid -> node
        self.subscribed = False  # the broker granted this node's own ack subscription
        self.last_id = 0
        self.more = True  # the spool may hold waiting rows after last_id
        self.next_check = 0.0
        self.resend_all = False  # `spool flush`: re-send every unconfirmed row once, now

    def busy(self) -> set[int]:
        return {row_id for row_id, _, _ in self.inflight.values() if row_id} | {
            i for ids in self.batches.values() for i in ids
        }


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
        self.by_collector = self.cfg.confirm == "collector"
        self.backoff = Backoff(self.cfg.reconnect_min, self.cfg.reconnect_max)
        self.connected = False
        self.crashed = False
        self.unconfirmed = False  # a sent reading has waited past confirm_timeout (logged once per episode)
        self.paused = False  # the data budget is spent: stay offline until the daemon says otherwise
        self.meter = settings.meter
        self._wake = threading.Event()
        self._urgent = threading.Event()  # a state change waits in the spool: its batch goes now
        self._pending_since: Optional[float] = None  # when the oldest row not yet batched was first seen
        self._held_note = False
        self._stop = threading.Event()
        self._drained = threading.Event()
        self._drain_only = False
        self._stop_deadline = 0.0
        self._last_report: Optional[str] = None
        self._reported_denials: set[str] = set()
        self._reported_stale: set[tuple[str, int]] = set()
        self._reported_sub = False
        self._tokens = 0.0
        self._status_due = False
        self._next_probe = 0.0
        self._resent = 0
        self._next_resend_note = 0.0
        self._thread = threading.Thread(target=self._main, name="mqtt-publisher", daemon=True)

    # -- control (any thread) ----------------------------------------------
    def start(self) -> Publisher:
        self._thread.start()
        return self

    def wake(self, urgent: bool = False) -> None:
        if urgent:
            self._urgent.set()
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
        """Confirm the whole spool and return True, or False when `timeout` passes first (spool flush)."""
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
                if self.paused:  # the data budget is spent: no connection, no keepalives
                    self._stop.wait(1.0)
                    continue
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
        s.resend_all = self._drain_only
        try:
            spool.clamp_clock(time.time())
        except sqlite3.Error as exc:  # damage: the daemon is told by the spool's watch and rebuilds it
            self._report(f"the spool cannot be read ({exc}); retrying with backoff")
            return
        try:
            client = MqttClient(self._options())
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._report(f"cannot set up the MQTT client for {self.url}: {exc}")
            return
        client.on_connect = lambda ok, reason, present: setattr(s, "connack", (ok, reason, present))
        client.on_disconnect = lambda reason: setattr(s, "lost", reason)
        client.on_publish = lambda mid, code: self._on_publish(s, mid, code)
        client.on_subscribe = lambda mid, codes: self._on_subscribe(s, mid, codes)
        client.on_message = lambda topic, payload, qos, retain: self._on_message(s, topic, payload)
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
            self._count_failed_connect()
            self._report(
                f"cannot reach broker {self.url}: {exc.strerror or exc}; spooling, retrying with backoff",
                logging.WARNING,
            )
            return
        try:
            if self._await_connack(client, s) and (not self.by_collector or self._subscribe_acks(client, s, spool)):
                self._publish_loop(client, s, spool)
        except (ConnectionError, sqlite3.Error) as exc:  # paho refused a publish, or the spool is unwell
            self._report(f"publishing to {self.url} interrupted: {exc}; retrying with backoff")
        finally:
            self._count(client, s, closing=True)
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

    # -- acknowledgements ----------------------------------------------------
    def _subscribe_acks(self, client: MqttClient, s: _Session, spool: Spool) -> bool:
        """Subscribe to the ack topic(s), then hear the retained ack before sending anything:
        it confirms what the collector already holds, so none of that is sent twice. False if
        the connection is lost meanwhile."""
        node = self.settings.node
        for n in sorted({node, *spool.nodes()}):
            t = topics.ack_topic(n, self.cfg.ack_topic)
            s.ack_topics[t] = n
            s.subscribing[client.subscribe(t, 0)] = n  # QoS 0: on a new connection the retained ack is resent
        deadline = time.monotonic() + CONNACK_TIMEOUT_S
        while node in s.subscribing.values() and time.monotonic() < deadline and not self._stop.is_set():
            if client.loop(0.1) != 0:
                return False
        grace = time.monotonic() + ACK_GRACE_S  # the retained ack follows the SUBACK on the same connection
        while time.monotonic() < grace:
            if client.loop(0.05) != 0:
                return False
        fresh = spool.is_fresh()
        self._apply_acks(s, spool, stale=fresh)
        if fresh and s.subscribed:
            spool.clear_fresh()
        return True

    def _on_subscribe(self, s: _Session, mid: int, codes: list[int]) -> None:
        node = s.subscribing.pop(mid, "")
        if node != self.settings.node:
            return
        if codes and all(c < 0x80 for c in codes):
            s.subscribed = True
        elif not self._reported_sub:
            self._reported_sub = True
            log.error(
                "broker %s refused the subscription to %s (%s): its ACL must let this node read it, or no reading "
                "can be confirmed; they stay in the spool (mqtt.confirm = \"broker\" if no netprobe collector "
                "acknowledges)",
                self.url, topics.ack_topic(node, self.cfg.ack_topic), codes,
            )  # fmt: skip

    def _on_message(self, s: _Session, topic: str, payload: bytes) -> None:
        node = s.ack_topics.get(topic)
        if node is None:
            return
        ack = decode_ack(payload)
        if ack is None:
            if payload:  # an empty retained message is a cleared ack: nothing to learn
                log.warning("ignoring a malformed acknowledgement on %s: %r", topic, payload[:80])
            return
        s.acks.append((node, ack))

    def _apply_acks(self, s: _Session, spool: Spool, stale: bool = False) -> None:
        """Delete what the acks cover. An ack naming seqs this node never issued (or, on a fresh
        spool, any ack heard before the first publish) is left from an earlier install of the
        node id: acks may no longer confirm those seqs, and rows holding them are renumbered."""
        acks, s.acks = s.acks, []
        for node, ack in acks:
            top = ack.top
            if top and (stale or top > spool.issued(node)):
                if top > spool.floor(node):
                    moved = spool.raise_floor(node, top)
                    s.last_id, s.more = 0, True
                    if (node, top) not in self._reported_stale:
                        self._reported_stale.add((node, top))
                        log.error(
                            "an acknowledgement for %s covers seqs up to %d, which this node has not issued from its "
                            "spool: it is left from an earlier install of this node id (its state directory was "
                            "reset). Those seqs are not trusted; readings continue above them (%d renumbered)",
                            node, top, moved,
                        )  # fmt: skip
                continue
            if spool.confirm(node, ack):
                self._wake.set()

    # -- publishing ----------------------------------------------------------
    def _on_publish(self, s: _Session, mid: int, code: Optional[int]) -> None:
        row_id, topic, resent = s.inflight.pop(mid, (0, "", False))
        batch_ids = s.batches.pop(mid, ())
        if code is not None and code >= 0x80:
            reason = "not authorized" if code == NOT_AUTHORIZED else f"reason code 0x{code:02x}"
            if topic not in self._reported_denials:
                self._reported_denials.add(topic)
                log.error(
                    "broker %s denied publishing to '%s' (%s): check its ACL for this node; "
                    "those readings stay in the spool and are tried again",
                    self.url, topic, reason,
                )  # fmt: skip
            if row_id:
                s.refused.append(row_id)
            s.refused.extend(batch_ids)
            return
        if row_id:
            s.taken.append((row_id, resent))
        s.taken.extend((i, resent) for i in batch_ids)

    def _apply(self, s: _Session, spool: Spool) -> None:
        """Write what this loop learnt to the spool: taken, refused, confirmed."""
        if s.taken:
            ids = [i for i, _ in s.taken]
            if self.by_collector:
                spool.mark_sent(ids)
            else:
                spool.delete(ids)
                if any(resent for _, resent in s.taken):  # a re-send got through: try the older ones too
                    spool.note_confirmed_sent(time.time())
            s.taken = []
        if s.refused:
            spool.mark_sent(s.refused)  # not taken, but tried: the re-send rules apply
            s.refused = []
        if s.acks:
            self._apply_acks(s, spool)

    def _publish_loop(self, client: MqttClient, s: _Session, spool: Spool) -> None:
        next_status = 0.0
        last_tick = time.monotonic()
        window = self.cfg.max_inflight
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
            if now >= s.next_check and not stopping:
                s.next_check = now + min(RESCAN_S, self.cfg.confirm_timeout / 4)
                self._check_confirmations(spool)
                self._resend(client, s, spool)
                self._count(client, s)
            if self.paused and not stopping:
                self._goodbye(client, s, why="hold")
                return
            if self.cfg.batch:
                self._send_batches(client, s, spool, now)
            elif s.more and len(s.inflight) < window:
                self._send_pending(client, s, spool)
            rc = client.loop(IDLE_LOOP_S if not s.more or len(s.inflight) >= window else 0.01)
            self._apply(s, spool)
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

    def _room(self, s: _Session) -> int:
        room = self.cfg.max_inflight - len(s.inflight)
        if self.cfg.replay_rate > 0:
            room = min(room, int(self._tokens))
        return room

    def _send_pending(self, client: MqttClient, s: _Session, spool: Spool) -> None:
        """Waiting rows, oldest first, each once per connection."""
        room = self._room(s)
        if room <= 0:
            return
        rows = spool.unsent(s.last_id, room)
        s.more = len(rows) == room
        busy = s.busy()
        for row in rows:
            if not self._affordable(wire_size(row.topic, row.payload)):
                s.more = False
                return
            s.last_id = row.id
            if row.id not in busy:
                self._publish(client, s, row.topic, row.payload, row_id=row.id)
                self._tokens -= 1

    # -- batches (mqtt.batch) ------------------------------------------------
    def _batch_due(self, s: _Session, now: float) -> bool:
        if s.backlog or self._urgent.is_set() or self._stop.is_set() or self._drain_only:
            return True
        return self._pending_since is not None and now - self._pending_since >= self.cfg.batch_s

    def _send_batches(self, client: MqttClient, s: _Session, spool: Spool, now: float) -> None:
        """Waiting rows as batches: once the oldest has waited batch_s, at once for a state change or a
        backlog; at most BATCH_WINDOW batches in flight."""
        woke, s.more = s.more, False  # the spool changed; in batch mode the loop never spins on it
        if woke and self._pending_since is None:
            if spool.unsent(s.last_id, 1):
                self._pending_since = now
            else:
                s.backlog = False
        if not self._batch_due(s, now) or len(s.batches) >= BATCH_WINDOW or self._room(s) <= 0:
            return
        want = batching.MAX_READINGS * (BATCH_WINDOW - len(s.batches))
        rows = spool.unsent(s.last_id, want)
        busy = s.busy()
        rows = [r for r in rows if r.id not in busy]
        if not rows:
            self._pending_since, s.backlog = None, False
            self._urgent.clear()
            return
        sent = self._publish_batches(client, s, rows)
        if sent < len(rows) or len(rows) == want:  # more waits: keep the batches coming (a backlog)
            s.backlog = sent > 0 and not self.paused
            return
        self._pending_since, s.backlog = None, False
        self._urgent.clear()

    def _publish_batches(self, client: MqttClient, s: _Session, rows: list[Row], resent: bool = False) -> int:
        """Pack `rows` and publish as many batches as the window, the tokens and the budget allow; returns
        how many rows went. A row that cannot be batched goes alone."""
        done = 0
        packed = batching.pack(rows, self.cfg.topic)
        in_batch = {i for b in packed for i in b.ids}
        for row in rows:
            if row.id not in in_batch:  # not a Reading's JSON object: as it is
                self._publish(client, s, row.topic, row.payload, row_id=row.id, resent=resent)
                s.last_id = max(s.last_id, row.id)
        for b in packed:
            if (
                len(s.batches) >= BATCH_WINDOW
                or self._room(s) <= 0
                or not self._affordable(wire_size(b.topic, b.payload))
            ):
                break
            mid = client.publish(b.topic, b.payload, qos=self.cfg.qos)
            s.last_id = max(s.last_id, max(b.ids))
            self._tokens -= 1
            done += b.count
            if self.cfg.qos == 0:
                s.taken.extend((i, resent) for i in b.ids)
                continue
            s.inflight[mid] = (0, b.topic, resent)
            s.batches[mid] = b.ids
        return done + len(rows) - len(in_batch)

    # -- what it costs (agent.usage) -------------------------------------------
    def _affordable(self, size: int) -> bool:
        """Whether a publish of `size` bytes (and its TCP/IP and PUBACK) fits the data budget; said once if not."""
        if self.meter is None:
            return True
        estimate = size + wire.packets(size, wire.IP + wire.TCP) * wire.TCP_SEGMENT + 2 * wire.TCP_SEGMENT + 4
        if self.meter.allow(estimate):
            self._held_note = False
            return True
        if not self._held_note:
            self._held_note = True
            log.warning("data budget: holding spooled readings back (this month's budget is nearly spent)")
        return False

    def _count(self, client: MqttClient, s: _Session, closing: bool = False) -> None:
        """Add what the connection moved since the last count to the ledger (kind "report")."""
        if self.meter is None:
            return
        counts = wire.tcp_counts(client.socket())
        if counts is not None:
            self.meter.add(REPORT, (counts - s.counted if s.counted else counts).wire())
            s.counted = counts
        if closing and s.counted is not None:
            self.meter.add(REPORT, wire.FIN_EXCHANGE)
            s.counted = None

    def _count_failed_connect(self) -> None:
        if self.meter is not None:
            self.meter.add(REPORT, wire.tcp_connection(answered=False))

    def _resend(self, client: MqttClient, s: _Session, spool: Spool) -> None:
        """Sent rows no confirmation has covered in time (see the module docstring)."""
        room = self._room(s)
        if room <= 0:
            return
        busy = s.busy()
        now, timeout = time.time(), self.cfg.confirm_timeout
        if s.resend_all:  # `spool flush`: whatever the collector has not confirmed goes again, now
            s.resend_all = False
            rows = spool.overdue(now, 0.0, room + len(busy))
        else:
            rows = spool.overdue(now, timeout, room + len(busy), before=spool.confirmed_sent())
            if not rows and time.monotonic() >= self._next_probe:
                rows = spool.overdue(now, timeout, 1 + len(busy))  # nothing lost for sure: one probe
                rows = [r for r in rows if r.id not in busy][:1]
                if rows:
                    self._next_probe = time.monotonic() + timeout
        rows = [r for r in rows if r.id not in busy][:room]
        if self.cfg.batch and rows:
            rows = rows[: self._publish_batches(client, s, rows, resent=True)]
        else:
            for row in rows:
                self._publish(client, s, row.topic, row.payload, row_id=row.id, resent=True)
                self._tokens -= 1
        self._resent += len(rows)
        if self._resent and time.monotonic() >= self._next_resend_note:
            if self.by_collector:
                log.info("re-sent %d reading(s) that no ack had covered within %g s (same id: the collector "
                         "keeps one)", self._resent, timeout)  # fmt: skip
            else:
                log.info("re-sent %d reading(s) the broker had refused %g s before", self._resent, timeout)
            self._resent, self._next_resend_note = 0, time.monotonic() + timeout

    def _check_confirmations(self, spool: Spool) -> None:
        """Say so, once per episode, when a sent reading has waited past confirm_timeout."""
        stats = spool.stats()
        late = delivery_state(self.cfg.confirm, self.cfg.confirm_timeout, stats) == NOT_CONFIRMED
        if late and not self.unconfirmed:
            self.unconfirmed, self._status_due = True, True
            if self.by_collector:
                log.error(
                    "%d reading(s) sent to %s are not confirmed by the collector after %.0f s (mqtt.confirm_timeout "
                    "%g s): check that `netprobe collect` runs, that the broker's ACL lets this node publish its "
                    "readings and read %s, and mqtt.topic. They stay in the spool and are sent again "
                    "(mqtt.confirm = \"broker\" if no netprobe collector reads them)",
                    stats.sent, self.url, stats.unconfirmed_s(), self.cfg.confirm_timeout,
                    topics.ack_topic(self.settings.node, self.cfg.ack_topic),
                )  # fmt: skip
            else:
                log.error(
                    "%d reading(s) have not been taken by broker %s for %.0f s (see the denials above); "
                    "they stay in the spool and are sent again",
                    stats.sent, self.url, stats.unconfirmed_s(),
                )  # fmt: skip
        elif not late and self.unconfirmed:
            self.unconfirmed, self._status_due = False, True
            log.warning("readings are confirmed again; %d sent and waiting for it", stats.sent)

    def _refill_tokens(self, elapsed: float) -> None:
        rate = self.cfg.replay_rate
        if rate > 0:
            self._tokens = min(max(1.0, rate), self._tokens + elapsed * rate)

    def _publish(
        self,
        client: MqttClient,
        s: _Session,
        topic: str,
        payload: bytes,
        *,
        row_id: int = 0,
        retain: bool = False,
        resent: bool = False,
    ) -> None:
        mid = client.publish(topic, payload, qos=self.cfg.qos, retain=retain)
        if self.cfg.qos == 0:
            if row_id:
                s.taken.append((row_id, resent))
            return
        s.inflight[mid] = (row_id, topic, resent)

    def _status(self, spool: Spool, state: str) -> bytes:
        return status_payload(state, self.settings, time.monotonic() - self.started_mono, spool)

    def _goodbye(self, client: MqttClient, s: _Session, why: str = "") -> None:
        """A clean stop: the will is not sent on DISCONNECT, so say offline ourselves (and why: the budget)."""
        if self.settings.announce:
            self._publish(client, s, self.status_topic, offline_payload(self.settings.node, why), retain=True)
            deadline = time.monotonic() + OFFLINE_ACK_WAIT_S
            while s.inflight and time.monotonic() < deadline and client.loop(0.05) == 0:
                pass
        client.disconnect()
        client.loop(0.05)
