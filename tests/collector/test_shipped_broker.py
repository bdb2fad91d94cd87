"""packaging/mosquitto/ as shipped, on a real Mosquitto: who may write and read what (issue 12, issue 15).

The broker runs the repository's netprobe.conf and netprobe.acl installed the Debian way (conf.d/
under the stock mosquitto.conf), changed only in ports and file paths (``shipped_broker`` in
tests/fixtures/mosquitto.py). The clients are paho-mqtt 2.x over TLS and raw sockets, nothing from
agent/, so what these tests prove is the broker's policy alone:

- a node that claims another node's client id cannot write that node's topics, cannot set a last
  will on them, and does not take over that node's connection or session;
- a node reads only its own ``netprobe/ack/<node>`` and ``netprobe/cmd/<node>``. Mosquitto 2.0.11
  grants every SUBSCRIBE (MQTT 5 and 3.1.1 alike, measured; the ACL is checked per message), so
  the tests assert what matters: nothing else is delivered;
- nodes never write acks or commands; collectors read everything and write acks and commands;
- the only listener is the TLS one (no implicit plaintext listener on 1883);
- a packet over ``max_packet_size`` closes the connection, also before login; one just under passes;
- anonymous and wrong-password logins are refused.

``NETPROBE_SHIPPED_MOSQUITTO=<dir with netprobe.conf and netprobe.acl>`` runs them on other files.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.fixtures.mosquitto import Broker

pytestmark = pytest.mark.broker

A, B = "muba-sekayu-balai-agung-01", "muba-lais-tanjung-agung-01"
SITE = {A: ("sekayu", "balai-agung"), B: ("lais", "tanjung-agung")}
USERS = {"collector-1": "c1-secret", "collector-2": "c2-secret", A: "a-secret", B: "b-secret"}
NOT_AUTHORIZED = 0x87
LIMIT = 256 * 1024  # the max_packet_size the tests expect netprobe.conf to set
COLLECTOR_MAX_PAYLOAD = 65536  # agent/collector/settings.py: max_payload_bytes; it must pass the broker


def reading_topic(node: str, measurement: str = "icmp") -> str:
    kec, desa = SITE[node]
    return f"netprobe/{kec}/{desa}/{node}/{measurement}"


class Client:
    """A paho 2.x client over TLS that records what the broker answers: CONNACK, PUBACK and SUBACK
    reason codes, messages, and a disconnect. No automatic reconnect, so a kicked client stays out."""

    def __init__(
        self,
        broker: Broker,
        username: Optional[str],
        password: Optional[str] = None,
        *,
        client_id: Optional[str] = None,
        v5: bool = True,
        will: Optional[str] = None,
        session_expiry: int = 0,
        connect: bool = True,
    ) -> None:
        self.broker = broker
        self.v5 = v5
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=username if client_id is None else client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, reconnect_on_failure=False,
        )  # fmt: skip
        self.c.tls_set(ca_certs=broker.ca_file)
        if username is not None:
            self.c.username_pw_set(username, USERS.get(username, "") if password is None else password)
        if will:
            self.c.will_set(will, b"offline", qos=1, retain=True)
        self.session_expiry = session_expiry
        self.cond = threading.Condition()
        self.connack: Optional[int] = None
        self.disconnect_reason: Optional[int] = None
        self.acks: dict[int, int] = {}
        self.subacks: dict[int, list[int]] = {}
        self.messages: list[tuple[str, bytes, bool]] = []
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message
        if connect:
            self.connect()

    # -- callbacks (paho's thread) ----------------------------------------------------------------
    def _on_connect(self, c: Any, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        with self.cond:
            self.connack = rc.value
            self.cond.notify_all()

    def _on_disconnect(self, c: Any, u: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        with self.cond:
            self.disconnect_reason = rc.value
            self.cond.notify_all()

    def _on_publish(self, c: Any, u: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        with self.cond:
            self.acks[mid] = rc.value
            self.cond.notify_all()

    def _on_subscribe(self, c: Any, u: Any, mid: int, rcs: list[ReasonCode], props: Any) -> None:
        with self.cond:
            self.subacks[mid] = [rc.value for rc in rcs]
            self.cond.notify_all()

    def _on_message(self, c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self.cond.notify_all()

    # -- what a test calls --------------------------------------------------------------------------
    def _wait(self, ready: Callable[[], bool], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(ready, timeout)

    @property
    def connected(self) -> bool:
        return self.connack == 0 and self.disconnect_reason is None

    def connect(self, timeout: float = 10.0) -> Optional[int]:
        """The CONNACK reason code (0: accepted), or None if the broker closed the connection first."""
        kwargs: dict[str, Any] = {}
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            if self.session_expiry:
                props.SessionExpiryInterval = self.session_expiry
            kwargs = {"clean_start": not self.session_expiry, "properties": props}
        self.c.connect(self.broker.host, self.broker.port, keepalive=30, **kwargs)
        self.c.loop_start()
        self._wait(lambda: self.connack is not None or self.disconnect_reason is not None, timeout)
        return self.connack

    def publish(self, topic: str, payload: bytes = b"x", retain: bool = False, timeout: float = 10.0) -> Optional[int]:
        """The PUBACK reason code (MQTT 3.1.1: always 0), or None if the broker closed the connection."""
        mid = self.c.publish(topic, payload, qos=1, retain=retain).mid
        self._wait(lambda: mid in self.acks or self.disconnect_reason is not None, timeout)
        return self.acks.get(mid)

    def subscribe(self, topic: str, timeout: float = 10.0) -> list[int]:
        mid = self.c.subscribe(topic, qos=1)[1]
        assert self._wait(lambda: mid in self.subacks, timeout), f"no SUBACK for {topic}"
        return self.subacks[mid]

    def wait_for(self, predicate: Callable[[list[tuple[str, bytes, bool]]], bool], timeout: float = 10.0) -> bool:
        return self._wait(lambda: predicate(self.messages), timeout)

    def got(self, topic: str, payload: Optional[bytes] = None) -> bool:
        with self.cond:
            return any(t == topic and (payload is None or p == payload) for t, p, _ in self.messages)

    def topics(self) -> set[str]:
        with self.cond:
            return {t for t, _, _ in self.messages}

    def wait_disconnected(self, timeout: float) -> bool:
        return self._wait(lambda: self.disconnect_reason is not None, timeout)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def shipped(shipped_broker: Callable[..., Broker]) -> Broker:
    return shipped_broker(USERS)


@pytest.fixture
def client(shipped: Broker) -> Any:
    made: list[Client] = []

    def factory(username: Optional[str], password: Optional[str] = None, **kwargs: Any) -> Client:
        c = Client(shipped, username, password, **kwargs)
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()


def node(client: Callable[..., Client], name: str, **kwargs: Any) -> Client:
    c = client(name, **kwargs)
    assert c.connack == 0, f"{name} could not log in: {c.connack} {c.broker.log_text()[-2000:]}"
    return c


def settle(c: Client, barrier: Callable[[], Optional[int]], topic: str, payload: bytes) -> None:
    """Publish `barrier` (a publish to `topic` with `payload`) and wait until `c` has it: everything
    the broker would have delivered to `c` before it has been delivered by then."""
    assert barrier() in (0, 0x10), "the barrier publish was refused"
    assert c.wait_for(lambda msgs: (topic, payload) in {(t, p) for t, p, _ in msgs}), f"no {topic} {payload!r}"
    time.sleep(0.2)


# --- raw sockets: what paho would not send ------------------------------------------------------


def tls_socket(broker: Broker) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=broker.ca_file)
    return ctx.wrap_socket(socket.create_connection((broker.host, broker.port), timeout=5), server_hostname=broker.host)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_string(s: str) -> bytes:
    return struct.pack("!H", len(s.encode())) + s.encode()


def connect_packet(client_id: str, username: str, password: str) -> bytes:
    """An MQTT 3.1.1 CONNECT with a clean session, username and password."""
    body = mqtt_string("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 30)
    body += mqtt_string(client_id) + mqtt_string(username) + mqtt_string(password)
    return b"\x10" + varint(len(body)) + body


def reply(sock: socket.socket, timeout: float = 3.0) -> Optional[bytes]:
    """What the peer sends next: bytes, b"" once it closed the connection, None if it said nothing."""
    sock.settimeout(timeout)
    try:
        return sock.recv(16)
    except (ssl.SSLError, ConnectionError):
        return b""
    except socket.timeout:
        return None


def listening_sockets(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state held by process `pid`, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: TCP_LISTEN
                hexaddr, hexport = local.split(":")
                raw = bytes.fromhex(hexaddr)
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # host-order words
                found.add((socket.inet_ntop(family, raw), int(hexport, 16)))
    return found


def active_lines(path: Path) -> list[list[str]]:
    return [ln.split() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


# Options that belong to a listener (man mosquitto.conf, LISTENERS): before the first `listener`
# line they configure an implicit default listener, plaintext on 1883 of every interface.
LISTENER_OPTIONS = {
    "bind_address", "bind_interface", "http_dir", "max_connections", "max_qos", "max_topic_alias", "mount_point",
    "port", "protocol", "socket_domain", "use_username_as_clientid", "cafile", "capath", "certfile", "ciphers",
    "ciphers_tls1.3", "crlfile", "dhparamfile", "keyfile", "require_certificate", "tls_engine",
    "tls_engine_kpass_sha1", "tls_keyform", "tls_version", "use_identity_as_username", "use_subject_as_username",
    "psk_hint",
}  # fmt: skip


# --- 1. identity: a node cannot act as another ------------------------------------------------


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_a_node_claiming_another_nodes_client_id_cannot_write_its_topics(client: Any, v5: bool) -> None:
    collector = node(client, "collector-1")
    assert collector.subscribe("netprobe/#") == [1]
    sneaky = node(client, A, client_id=B, v5=v5)  # user A, client id B

    codes = [sneaky.publish(reading_topic(B), b"forged"), sneaky.publish(reading_topic(B, "status"), b"forged", True)]
    if v5:
        assert codes == [NOT_AUTHORIZED, NOT_AUTHORIZED]
    # MQTT 3.1.1 has no reason code: the broker acks and drops. Either way the collector sees nothing
    # (the barrier comes from A logged in normally, after the forgeries were acknowledged).
    assert sneaky.connected
    sneaky.close()
    genuine = node(client, A)
    settle(collector, lambda: genuine.publish(reading_topic(A), b"own"), reading_topic(A), b"own")
    assert not collector.got(reading_topic(B)) and not collector.got(reading_topic(B, "status"))


def test_a_node_claiming_another_nodes_client_id_does_not_take_over_its_session(client: Any, shipped: Broker) -> None:
    collector = node(client, "collector-1")
    assert collector.subscribe("netprobe/#") == [1]
    real_b = node(client, B, session_expiry=3600)  # a persistent session, as agents keep
    assert real_b.subscribe(f"netprobe/ack/{B}") == [1]

    # A logs in with B's client id: MQTT 5 with a clean start, then MQTT 3.1.1 with a clean session.
    # Had it got B's client id, the broker would close B's connection and drop B's session.
    for n, v5 in enumerate((True, False)):
        impostor = node(client, A, client_id=B, v5=v5)
        impostor.subscribe(f"netprobe/ack/{B}")
        assert not real_b.wait_disconnected(1.0), f"B was disconnected (reason {real_b.disconnect_reason:#x})"
        assert "already connected, closing old connection" not in shipped.log_text()

        # B keeps publishing, and its session (the subscription to its acks) is still its own.
        reading, ack = (reading_topic(B), f"still here {n}".encode(), False), f"ack {n}".encode()
        assert real_b.publish(reading[0], reading[1]) in (0, 0x10)
        assert collector.wait_for(lambda msgs, want=reading: want in msgs)
        assert collector.publish(f"netprobe/ack/{B}", ack, retain=True) in (0, 0x10)
        assert real_b.wait_for(lambda msgs, want=ack: any(p == want for _, p, _ in msgs))
        time.sleep(0.2)
        assert impostor.messages == [] and impostor.connected
        impostor.close()
    assert real_b.connected


def test_a_node_cannot_set_a_last_will_on_another_nodes_status(client: Any) -> None:
    real_b = node(client, B)
    assert real_b.publish(reading_topic(B, "status"), b"online", retain=True) in (0, 0x10)
    collector = node(client, "collector-1")
    assert collector.subscribe("netprobe/+/+/+/status") == [1]
    assert collector.wait_for(lambda msgs: (reading_topic(B, "status"), b"online", True) in msgs)

    # A, claiming B's client id, with a will that would report B offline; then A drops with its will.
    sneaky = node(client, A, client_id=B, will=reading_topic(B, "status"))
    sneaky.c.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
    assert sneaky.wait_disconnected(5)
    # A's will on its own status topic does arrive: the control that wills work at all.
    own = node(client, A, will=reading_topic(A, "status"))
    own.c.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
    assert collector.wait_for(lambda msgs: (reading_topic(A, "status"), b"offline", False) in msgs)
    time.sleep(0.2)
    assert not collector.got(reading_topic(B, "status"), b"offline")
    fresh = node(client, "collector-2")
    assert fresh.subscribe(reading_topic(B, "status")) == [1]
    assert fresh.wait_for(lambda msgs: len(msgs) > 0)
    assert fresh.messages == [(reading_topic(B, "status"), b"online", True)]
    assert real_b.connected


# --- 2. what a node may read -----------------------------------------------------------------


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_a_node_reads_only_its_own_ack_and_cmd_topics(client: Any, v5: bool) -> None:
    collector = node(client, "collector-1")
    for target in (A, B):
        for kind in ("ack", "cmd"):
            assert collector.publish(f"netprobe/{kind}/{target}", f"{kind} for {target}".encode(), True) in (0, 0x10)
    real_b = node(client, B)
    assert real_b.publish(reading_topic(B, "status"), b"online", retain=True) in (0, 0x10)

    reader = node(client, A, v5=v5)
    foreign = ["#", "netprobe/#", f"netprobe/ack/{B}", "netprobe/ack/+", f"netprobe/cmd/{B}", "netprobe/+/+/+/+",
               f"netprobe/+/+/{B}/#", reading_topic(B), reading_topic(B, "status"), reading_topic(A), "$SYS/#"]  # fmt: skip
    granted = {t: reader.subscribe(t)[0] for t in foreign}
    own = {t: reader.subscribe(t)[0] for t in (f"netprobe/ack/{A}", f"netprobe/cmd/{A}")}
    assert all(code < 0x80 for code in own.values()), own
    # The retained ack and command for A arrive ...
    assert reader.wait_for(lambda msgs: {(t, p) for t, p, _ in msgs} >= {
        (f"netprobe/ack/{A}", f"ack for {A}".encode()), (f"netprobe/cmd/{A}", f"cmd for {A}".encode())})  # fmt: skip

    # ... and live traffic everywhere else does not: B's readings, B's acks and commands, A's own readings.
    assert real_b.publish(reading_topic(B), b"live") in (0, 0x10)
    assert collector.publish(f"netprobe/ack/{B}", b"live ack for B") in (0, 0x10)
    assert collector.publish(f"netprobe/cmd/{B}", b"live cmd for B") in (0, 0x10)
    assert reader.publish(reading_topic(A), b"own reading") in (0, 0x10)
    settle(
        reader,
        lambda: collector.publish(f"netprobe/ack/{A}", b"live ack for A"),
        f"netprobe/ack/{A}",
        b"live ack for A",
    )
    assert reader.topics() == {f"netprobe/ack/{A}", f"netprobe/cmd/{A}"}, (granted, reader.messages)


# --- 3. what a node and a collector may write ----------------------------------------------------


def test_a_node_cannot_write_acks_or_commands(client: Any) -> None:
    collector = node(client, "collector-1")
    assert collector.subscribe("netprobe/#") == [1]
    real_b = node(client, B)
    assert real_b.subscribe(f"netprobe/ack/{B}") == [1]
    sneaky = node(client, A)
    forged = [f"netprobe/ack/{A}", f"netprobe/ack/{B}", f"netprobe/cmd/{A}", f"netprobe/cmd/{B}",
              # under the reading pattern netprobe/+/+/<node>/#, with kecamatan "ack" or "cmd":
              f"netprobe/ack/{B}/{A}/icmp", f"netprobe/ack/sekayu/{A}", f"netprobe/cmd/x/{A}/status"]  # fmt: skip
    codes = {t: sneaky.publish(t, b"forged ack", retain=True) for t in forged}
    assert codes == dict.fromkeys(forged, NOT_AUTHORIZED)
    settle(collector, lambda: sneaky.publish(reading_topic(A), b"own"), reading_topic(A), b"own")
    assert not any(t.startswith(("netprobe/ack/", "netprobe/cmd/")) for t in collector.topics())
    assert real_b.messages == []


def test_the_collectors_read_everything_and_write_acks_and_commands(client: Any) -> None:
    shared = node(client, "collector-1")
    assert shared.subscribe("$share/collectors/netprobe/+/+/+/+") == [1]  # as agent/collector subscribes
    everything = node(client, "collector-2")
    assert everything.subscribe("netprobe/#") == [1]

    a, b = node(client, A), node(client, B)
    assert a.publish(reading_topic(A), b"a1") in (0, 0x10) and b.publish(reading_topic(B), b"b1") in (0, 0x10)
    assert a.publish(reading_topic(A, "status"), b"online", retain=True) in (0, 0x10)
    want = {(reading_topic(A), b"a1"), (reading_topic(B), b"b1"), (reading_topic(A, "status"), b"online")}
    for c in (shared, everything):
        assert c.wait_for(lambda msgs: {(t, p) for t, p, _ in msgs} >= want), c.messages

    for name, collector in (("collector-1", shared), ("collector-2", everything)):
        assert collector.publish(f"netprobe/ack/{A}", f"ack {name}".encode(), retain=True) in (0, 0x10)
        assert collector.publish(f"netprobe/cmd/{A}", b"cmd", retain=True) in (0, 0x10)
        # Collectors acknowledge; they do not write readings.
        assert collector.publish(reading_topic(A), b"forged by a collector") == NOT_AUTHORIZED
    assert everything.wait_for(lambda msgs: (f"netprobe/ack/{A}", b"ack collector-2", False) in msgs)
    a.subscribe(f"netprobe/ack/{A}")
    a.subscribe(f"netprobe/cmd/{A}")
    assert a.wait_for(lambda msgs: {(t, p) for t, p, _ in msgs} >= {
        (f"netprobe/ack/{A}", b"ack collector-2"), (f"netprobe/cmd/{A}", b"cmd")})  # fmt: skip


# --- 4. the listener ---------------------------------------------------------------------------


def test_the_only_listener_is_tls_and_there_is_no_plaintext_1883(shipped: Broker) -> None:
    broker = shipped
    assert broker.conf_d is not None and broker.proc is not None
    # In the config: one listener, and no listener option before it (which would open the implicit
    # default listener, plaintext on port 1883 of every interface).
    lines = active_lines(broker.conf_path) + active_lines(broker.conf_d / "netprobe.conf")
    assert [w for w in lines if w[0] == "listener"] == [["listener", str(broker.port)]]
    first = next(i for i, w in enumerate(lines) if w[0] == "listener")
    assert [w for w in lines[:first] if w[0] in LISTENER_OPTIONS] == []
    options = {w[0]: w[1:] for w in lines[first:]}
    assert {"certfile", "keyfile", "use_username_as_clientid"} <= options.keys()

    # In the running broker: the sockets it listens on, and what it says it opened.
    assert {port for _, port in listening_sockets(broker.proc.pid)} == {broker.port}
    opened = [ln for ln in broker.log_text().splitlines() if "listen socket on port" in ln]
    assert opened and all(ln.endswith(f"on port {broker.port}.") for ln in opened), opened

    # The TLS port does not speak MQTT in the clear, even with a valid login.
    with socket.create_connection((broker.host, broker.port), timeout=5) as plain:
        plain.sendall(connect_packet("collector-1", "collector-1", USERS["collector-1"]))
        answer = reply(plain)
    assert not (answer or b"").startswith(b"\x20"), f"a CONNACK in plaintext: {answer!r}"
    assert answer is not None, "the broker kept a plaintext connection open"


# --- 5. packet size ----------------------------------------------------------------------------


def configured_limit(broker: Broker) -> Optional[int]:
    assert broker.conf_d is not None
    values = [int(w[1]) for w in active_lines(broker.conf_d / "netprobe.conf") if w[0] == "max_packet_size"]
    return values[-1] if values else None


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_a_packet_over_the_limit_closes_the_connection_and_one_under_it_passes(
    client: Any, shipped: Broker, v5: bool
) -> None:
    collector = node(client, "collector-2")
    assert collector.subscribe("netprobe/#") == [1]
    topic = reading_topic(A)
    # A QoS 1 PUBLISH: remaining length = 2 + topic + 2 (packet id) [+ 1 (MQTT 5: no properties)] + payload.
    # Mosquitto 2.0.11 refuses when remaining length + 1 > max_packet_size (measured: it does not
    # count the 1-4 bytes of the length itself), so `over` is the smallest packet it refuses and
    # `under` a whole packet (1 + 3 length bytes + remaining length) one byte under the limit.
    overhead = 2 + len(topic) + 2 + (1 if v5 else 0)
    under = LIMIT - 1 - 4 - overhead
    over = LIMIT - overhead

    sender = node(client, A, v5=v5)
    assert sender.publish(topic, b"c" * COLLECTOR_MAX_PAYLOAD) in (0, 0x10)
    assert sender.publish(topic, b"u" * under) in (0, 0x10)
    assert collector.wait_for(lambda msgs: [len(p) for t, p, _ in msgs if t == topic] == [COLLECTOR_MAX_PAYLOAD, under])

    assert sender.publish(topic, b"o" * over) is None, "the broker acknowledged a packet over the limit"
    assert sender.wait_disconnected(5)
    settle(collector, lambda: node(client, A, client_id="again").publish(topic, b"after"), topic, b"after")
    assert [len(p) for t, p, _ in collector.messages if t == topic] == [COLLECTOR_MAX_PAYLOAD, under, len(b"after")]
    assert configured_limit(shipped) == LIMIT


def test_an_oversized_packet_is_refused_before_login(shipped: Broker) -> None:
    # The header of a CONNECT claiming 256 MB: the broker must hang up rather than wait for (and
    # buffer) the rest from a client that has not even logged in.
    with tls_socket(shipped) as s:
        s.sendall(b"\x10" + varint(268_435_455) + mqtt_string("MQTT") + bytes([4, 0x02]))
        started = time.monotonic()
        assert reply(s, timeout=3.0) == b"", "the broker kept reading a 256 MB CONNECT"
        assert time.monotonic() - started < 2.0


# --- 6. who may log in -----------------------------------------------------------------------


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_anonymous_and_bad_logins_are_refused(client: Any, v5: bool) -> None:
    attempts = {
        "anonymous": client(None, client_id="anon", v5=v5),
        "empty username": client("", "", client_id="empty", v5=v5),
        "wrong password": client(A, "not-a-secret", v5=v5),
        "unknown user": client("muba-nowhere-01", "whatever", v5=v5),
        "another node's password": client(A, USERS[B], v5=v5),
    }
    codes = {what: c.connack for what, c in attempts.items()}
    # MQTT 5 CONNACK 0x87/0x86, MQTT 3.1.1 return codes 5/4 (which paho reports as 0x87/0x86), or the
    # connection closed before any CONNACK: never 0.
    assert all(code is None or code >= 0x80 for code in codes.values()), codes
    assert all(c.wait_disconnected(5) for c in attempts.values())
    assert node(client, A, v5=v5).connected  # and the right password still works
