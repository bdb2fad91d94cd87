"""The running collector: broker messages in, batches stored, then acknowledged.

Delivery promise: a message is acknowledged (PUBACK) only after the
transaction holding it has committed. While the database is down the batch is
retried with backoff and nothing is acked; the broker stops sending once
`receive_maximum` messages are unacked and keeps the rest in our persistent
session. If the collector dies meanwhile, the broker re-delivers everything
unacked on reconnect, and the reading id makes the re-delivery harmless.

paho >= 2 acks manually after the commit. paho 1.6 (Debian 12) cannot defer
an ack, so there the message callback waits until its batch is stored: the
same promise, one batch per message, so slower.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import random
import threading
import time
from typing import Any, Callable, Optional

from agent.collector.acks import AckBook
from agent.collector.incidents.process import EngineProcess
from agent.collector.settings import CollectorConfig, read_password
from agent.collector.store import Store, StoreDown, open_store
from agent.collector.store.base import RejectSample, StoreRefused
from agent.net.mqttclient import PAHO_V2, BrokerUrl, ConnectOptions, MqttClient
from agent.reading import topics
from agent.reading.contract import printable
from agent.reading.validate import (
    UNSTORABLE,
    Record,
    Rejected,
    Status,
    check_batch,
    check_message,
    is_batch_topic,
    sample_of,
)

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0
SUMMARY_EVERY_S = 60.0
BROKER_QUIET_S = 2.0
EXIT_AFTER_COMMIT_ENV = "NETPROBE_TEST_EXIT_AFTER_COMMIT"
SAMPLES_PER_KIND = 20  # rejected messages kept per kind and batch (the table keeps the latest 1000)


class Message:
    __slots__ = ("done", "mid", "payload", "qos", "topic")

    def __init__(self, topic: str, payload: bytes, qos: int, mid: int, done: Optional[threading.Event]) -> None:
        self.topic, self.payload, self.qos, self.mid, self.done = topic, payload, qos, mid, done


class AckingClient(MqttClient):
    """MqttClient plus what a subscriber needs: acks after storing, MQTT 5 receive maximum, mids."""

    def __init__(self, opts: ConnectOptions, receive_maximum: int) -> None:
        super().__init__(opts)
        self.receive_maximum = receive_maximum
        self.manual_ack = PAHO_V2 and hasattr(self._client, "manual_ack_set")
        if self.manual_ack:
            self._client.manual_ack_set(True)
        self._client.reconnect_delay_set(1, 30)
        self.on_raw: Optional[Callable[[str, bytes, int, int], None]] = None

    def _connect_kwargs(self) -> dict[str, Any]:
        kwargs = super()._connect_kwargs()
        if self.is_v5:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = kwargs.get("properties") or Properties(PacketTypes.CONNECT)
            props.ReceiveMaximum = self.receive_maximum
            kwargs["properties"] = props
        return kwargs

    def _message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        if self.on_raw:
            self.on_raw(msg.topic, bytes(msg.payload), int(msg.qos), int(msg.mid))

    def ack(self, mid: int, qos: int) -> None:
        if self.manual_ack and qos > 0:
            self._client.ack(mid, qos)


class Counters:
    def __init__(self) -> None:
        self.received = self.stored = self.duplicates = self.inbox_peak = 0
        self.rejected: dict[str, int] = {}


class Collector:
    def __init__(
        self,
        cfg: CollectorConfig,
        store_factory: Optional[Callable[[], Store]] = None,
        config_path: Optional[str] = None,
        verbose: bool = False,
    ) -> None:
        """`config_path`: the file `cfg` came from, for the incident engine's process (None: the same default)."""
        self.cfg = cfg
        self.engine = EngineProcess(config_path, verbose) if cfg.incidents.enabled else None
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.stopping = threading.Event()
        self.counters = Counters()
        self.logged_kinds: set[str] = set()
        self.connected = threading.Event()
        self.drained = threading.Event()
        self.blocked = 0  # paho 1.6 callbacks waiting for their commit
        self.hold_max = max(4 * cfg.broker.receive_maximum, 4 * cfg.store.batch_size)
        self.client: Optional[AckingClient] = None
        self.store: Optional[Store] = None
        self._store_factory = store_factory or self._open_store
        self._down_since: Optional[float] = None
        self.acks = AckBook(cfg.acks, cfg.broker.topic_prefix)
        # Test-only: exit right after the Nth commit holding readings, before any ack (a crash there).
        self._exit_after_commits = int(os.environ.get(EXIT_AFTER_COMMIT_ENV, "0") or 0)

    # -- broker -----------------------------------------------------------
    def subscription(self) -> str:
        b = self.cfg.broker
        topic = f"{b.topic_prefix}/+/+/+/+"
        return f"$share/{b.share_group}/{topic}" if b.share_group else topic

    def _make_client(self) -> AckingClient:
        b = self.cfg.broker
        opts = ConnectOptions(
            url=BrokerUrl.parse(b.url),
            client_id=b.client_id,
            protocol="5",
            persistent=b.session_expiry_s > 0,
            session_expiry_s=b.session_expiry_s,
            ca_file=b.ca_file,
            cert_file=b.cert_file,
            key_file=b.key_file,
            username=b.username,
            password=read_password(b.password_file),
        )
        client = AckingClient(opts, b.receive_maximum)
        client.on_raw = self._on_message
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        return client

    def _on_connect(self, ok: bool, reason: str, session_present: bool) -> None:
        if not ok:
            log.error("broker %s refused the collector: %s (retrying)", self.cfg.broker.url, reason)
            return
        log.info("connected to %s (session present: %s)", self.cfg.broker.url, session_present)
        assert self.client is not None
        self.client.subscribe(self.subscription(), 1)

    def _on_subscribe(self, mid: int, codes: list[int]) -> None:
        if any(c >= 0x80 for c in codes):
            log.error(
                "broker refused the subscription %s (reason %s): check the collector's ACL", self.subscription(), codes
            )
            return
        self.connected.set()
        log.info("subscribed to %s", self.subscription())

    def _on_disconnect(self, reason: str) -> None:
        self.connected.clear()
        if not self.stopping.is_set():
            log.warning("lost the broker %s: %s (reconnecting)", self.cfg.broker.url, reason)

    def _on_message(self, topic: str, payload: bytes, qos: int, mid: int) -> None:
        assert self.client is not None
        wait = not self.client.manual_ack and qos > 0
        done = threading.Event() if wait else None
        self.inbox.put(Message(topic, payload, qos, mid, done))
        if done is None:
            # A reconnecting session's whole queue may arrive at once (Mosquitto 2.0 does not hold
            # it to our receive maximum): stop reading the socket until the writer catches up, so
            # the backlog waits at the broker instead of in our memory.
            if self.inbox.qsize() > self.hold_max:
                while self.inbox.qsize() > self.hold_max // 2 and not self.stopping.is_set():
                    time.sleep(0.02)
            return
        # paho 1.6: returning from here sends the PUBACK, so wait for the commit.
        self.blocked += 1
        while not done.wait(0.5):
            if self.drained.is_set() and not done.is_set():
                # Stopping without having stored it: never return, so it is never acked. paho's
                # thread is a daemon; the process exits and the broker re-delivers the reading.
                threading.Event().wait()
        self.blocked -= 1

    # -- storing ----------------------------------------------------------
    def _open_store(self) -> Store:
        s = self.cfg.store
        return open_store(dsn=s.dsn, path=s.path, pg_schema=s.pg_schema, busy_timeout_s=s.busy_timeout_s)

    def _ensure_store(self) -> Store:
        if self.store is None:
            self.store = self._store_factory()
        return self.store

    def _take_batch(self, first: Message) -> list[Message]:
        batch = [first]
        limit = self.cfg.store.batch_size
        while len(batch) < limit:
            try:
                batch.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _sort(
        self, batch: list[Message], note: bool = True
    ) -> tuple[list[Record], list[tuple[Status, dict[str, str]]], dict[str, Any]]:
        records: list[Record] = []
        statuses: list[tuple[Status, dict[str, str]]] = []
        rejects: dict[str, tuple[int, str, str, list[RejectSample]]] = {}
        limit = self.cfg.validation.max_payload_bytes
        prefix = self.cfg.broker.topic_prefix
        for m in batch:
            if topics.parse_ack_topic(m.topic, prefix) is not None:
                continue  # an ack (only a custom subscription matches them): not a reading, not a reject
            if is_batch_topic(m.topic, prefix):  # many Readings, each judged alone (docs/data-cost.md)
                verdicts = [
                    (v, Message(m.topic, raw, m.qos, m.mid, None))
                    for v, raw in check_batch(m.topic, m.payload, prefix, limit)
                ]
            else:
                verdicts = [(check_message(m.topic, m.payload, prefix, limit), m)]
            for outcome, source in verdicts:
                if isinstance(outcome, Record):
                    records.append(outcome)
                elif isinstance(outcome, Status):
                    parts = m.topic.split("/")
                    statuses.append((outcome, {"kecamatan": parts[1], "desa": parts[2]}))
                else:
                    if note:
                        self._note_reject(outcome)
                    quarantine(rejects, source, outcome)
        return records, statuses, rejects

    def _note_reject(self, r: Rejected) -> None:
        self.counters.rejected[r.kind] = self.counters.rejected.get(r.kind, 0) + 1
        if r.kind not in self.logged_kinds:
            self.logged_kinds.add(r.kind)
            log.warning(
                "rejected a %s message from '%s': %s (further ones are only counted)", r.kind, r.node or "?", r.why
            )

    def _write(
        self,
        batch: list[Message],
        records: list[Record],
        statuses: list[tuple[Status, dict[str, str]]],
        rejects: dict[str, Any],
    ) -> int:
        """Store a sorted batch in one transaction; returns how many readings were new. Raises StoreDown.

        If the database refuses something in it, no retry of the same batch can help: store it
        message by message instead, and quarantine each message that is still refused (a
        `rejects` row with a sample), so one bad message never holds up, or stops, the rest.
        """
        store = self._ensure_store()
        try:
            return store.write(records, statuses, rejects)
        except StoreDown:
            raise
        except Exception as exc:
            self._refusal(exc, f"a batch of {len(batch)}; storing it message by message")
        fresh = refused = 0
        for m in batch:
            one = self._sort([m], note=False)
            try:
                fresh += store.write(*one)
            except StoreDown:
                raise
            except Exception as exc:
                if is_batch_topic(m.topic, self.cfg.broker.topic_prefix) and len(one[0]) > 1:
                    stored, lost = self._write_one_by_one(store, m, one)
                    fresh, refused = fresh + stored, refused + lost
                    continue
                refused += len(one[0])
                self._quarantine_refused(store, m, exc)
        self.counters.duplicates -= refused  # the caller counts unstored records as duplicates
        return fresh

    def _write_one_by_one(
        self, store: Store, m: Message, one: tuple[list[Record], list[Any], dict[str, Any]]
    ) -> tuple[int, int]:
        """A batch the database refused: its Readings one at a time, each refused one quarantined
        alone, so one bad Reading never costs the others of its batch. Returns (new, refused)."""
        records, statuses, rejects = one
        fresh = store.write([], statuses, rejects)
        refused = 0
        for r in records:
            try:
                fresh += store.write([r])
            except StoreDown:
                raise
            except Exception as exc:
                refused += 1
                alone = Message(m.topic, _record_json(r), m.qos, m.mid, None)
                self._quarantine_refused(store, alone, exc)
        return fresh, refused

    def _refusal(self, exc: Exception, what: str) -> None:
        if isinstance(exc, StoreRefused):
            log.warning("the database refused %s: %s", what, exc)
        else:  # not a database's verdict: a bug, which must not stop the collector either
            log.error("storing %s failed: %s: %s", what, type(exc).__name__, printable(exc, 300))
            log.debug("the failure", exc_info=exc)

    def _quarantine_refused(self, store: Store, m: Message, exc: Exception) -> None:
        verdict = check_message(m.topic, m.payload, self.cfg.broker.topic_prefix, self.cfg.validation.max_payload_bytes)
        node = verdict.node if isinstance(verdict, (Record, Status, Rejected)) else ""
        rejected = Rejected(UNSTORABLE, printable(f"the database refused it: {exc}", 200), node)
        self._note_reject(rejected)
        rejects: dict[str, tuple[int, str, str, list[RejectSample]]] = {}
        quarantine(rejects, m, rejected)
        try:
            store.write([], [], rejects)
        except StoreDown:
            raise
        except Exception as again:  # even its sample was refused: it is counted in the log only
            self._refusal(again, f"the quarantine of a message from '{node}'")

    def _store_batch(self, batch: list[Message]) -> bool:
        """Store until it works or we are told to stop; True when stored."""
        records, statuses, rejects = self._sort(batch)
        delay = 0.5
        while True:
            try:
                fresh = self._write(batch, records, statuses, rejects)
                break
            except StoreDown as exc:
                self._store_down(str(exc))
                if self.stopping.wait(delay * random.uniform(0.8, 1.2)):
                    return False
                delay = min(delay * 2, 30.0)
        if self._down_since is not None:
            log.warning("database back after %.0f s; storing again", time.monotonic() - self._down_since)
            self._down_since = None
        self.counters.stored += fresh
        self.counters.duplicates += len(records) - fresh
        self._committed(records)
        self._ack(batch)
        self.acks.note(records, time.monotonic())
        return True

    def _store_down(self, why: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.error("cannot store readings: %s; holding them unacknowledged and retrying", why)
        else:
            log.debug("still cannot store: %s", why)

    def _ack(self, batch: list[Message]) -> None:
        assert self.client is not None
        for m in batch:
            self.client.ack(m.mid, m.qos)
            if m.done is not None:
                m.done.set()

    def _committed(self, records: list[Record]) -> None:
        if records and self._exit_after_commits > 0:
            self._exit_after_commits -= 1
            if self._exit_after_commits == 0:
                log.warning("%s: exiting after a commit, before acknowledging it", EXIT_AFTER_COMMIT_ENV)
                os._exit(70)

    def _publish_acks(self, now: float, force: bool = False) -> None:
        """Tell nodes what is stored (agent/collector/acks.py); only ever after the commit."""
        if not self.acks.owed or self.client is None:
            return
        try:
            self.acks.flush(self._ensure_store(), self._publish_ack, now, force)
        except StoreDown as exc:
            log.debug("acknowledgements wait for the database: %s", exc)

    def _publish_ack(self, topic: str, payload: bytes) -> bool:
        assert self.client is not None
        try:
            self.client.publish(topic, payload, qos=1, retain=True)
        except ConnectionError as exc:
            log.debug("cannot publish the ack on %s yet: %s", topic, exc)
            return False
        return True

    def _purge(self) -> None:
        days = self.cfg.store.retention_days
        if days <= 0:
            return
        try:
            gone = self._ensure_store().purge(time.time() - days * 86400.0)
        except StoreDown as exc:
            log.warning("retention skipped: %s", exc)
            return
        if gone:
            log.info("retention: deleted %d readings older than %g days", gone, days)

    # -- the loop ---------------------------------------------------------
    def run(self) -> int:
        """Until stop(): receive, validate, store, ack. Returns an exit code."""
        self.client = self._make_client()
        log.info("collector %s: %s -> %s", self.cfg.broker.client_id, self.cfg.broker.url, self.store_label())
        warned_broker = self._first_connect(self.client)
        self.client.loop_start()
        started = last_purge = last_summary = time.monotonic()
        last_purge -= PURGE_EVERY_S  # purge once at start
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                if now - last_purge >= PURGE_EVERY_S:
                    self._purge()
                    last_purge = now
                if not self.connected.is_set() and now - started > BROKER_QUIET_S and not warned_broker:
                    log.error("cannot reach the broker %s yet; retrying with backoff (1-30 s)", self.cfg.broker.url)
                    warned_broker = True
                elif self.connected.is_set():
                    warned_broker = False
                if now - last_summary >= SUMMARY_EVERY_S:
                    self._summary()
                    last_summary = now
                self._publish_acks(now)
                if self.engine is not None:
                    self.engine.poll(now)
                try:
                    first = self.inbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                self.counters.received += 1
                batch = self._take_batch(first)
                self.counters.received += len(batch) - 1
                self.counters.inbox_peak = max(self.counters.inbox_peak, len(batch) + self.inbox.qsize())
                self._store_batch(batch)
            if self.engine is not None:
                self.engine.terminate()  # it stops while we drain
            self._drain()
            self._publish_acks(time.monotonic(), force=True)
        finally:
            if self.engine is not None:
                self.engine.stop()
            self.drained.set()
            time.sleep(0.6 if self.blocked else 0.0)  # let a waiting paho 1.6 callback see its fate
            if not self.blocked:
                self.client.disconnect()
                self.client.loop_stop()
            if self.store is not None:
                self.store.close()
            self._summary()
        return 0

    def _first_connect(self, client: AckingClient) -> bool:
        """One blocking attempt, to name the reason (refused, TLS, DNS) if it fails; paho retries after."""
        try:
            client.connect()
            return False
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            log.error("cannot connect to the broker %s: %s; retrying with backoff (1-30 s)", self.cfg.broker.url, exc)
            client.connect_async()
            return True

    def _drain(self) -> None:
        """On stop: store what already arrived, if the database lets us, then leave."""
        pending: list[Message] = []
        while True:
            try:
                pending.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        size = self.cfg.store.batch_size
        for i in range(0, len(pending), size):
            try:
                records, statuses, rejects = self._sort(pending[i : i + size])
                fresh = self._write(pending[i : i + size], records, statuses, rejects)
            except StoreDown as exc:
                log.warning(
                    "stopping with %d readings unstored (the broker re-delivers them): %s", len(pending) - i, exc
                )
                break
            self.counters.stored += fresh
            self._ack(pending[i : i + size])
            self.acks.note(records, time.monotonic())

    def _summary(self) -> None:
        c = self.counters
        log.info(
            "received %d, stored %d, duplicates %d, rejected %s, acks %d (%d bytes), unacked peak %d",
            c.received, c.stored, c.duplicates, c.rejected or 0, self.acks.published, self.acks.bytes, c.inbox_peak,
        )  # fmt: skip

    def store_label(self) -> str:
        s = self.cfg.store
        if s.dsn:
            from agent.collector.store.postgres import redact

            return f"PostgreSQL {redact(s.dsn)} (schema {s.pg_schema})"
        return f"SQLite {s.path}"

    def stop(self) -> None:
        self.stopping.set()


def _record_json(r: Record) -> bytes:
    """A stored-form Reading as JSON, for the sample of a quarantined batch item."""
    try:
        return json.dumps(dataclasses.asdict(r), separators=(",", ":"), ensure_ascii=False, default=repr).encode()
    except (TypeError, ValueError):
        return repr(r).encode("utf-8", "replace")


def quarantine(rejects: dict[str, tuple[int, str, str, list[RejectSample]]], m: Message, r: Rejected) -> None:
    """Count a rejected message under its kind, keeping a bounded sample of what was sent."""
    n, _, _, samples = rejects.get(r.kind, (0, "", "", []))
    if len(samples) < SAMPLES_PER_KIND:
        samples.append(RejectSample(r.node, r.why, printable(m.topic, 200), len(m.payload), sample_of(m.payload)))
    rejects[r.kind] = (n + 1, r.node, r.why, samples)
