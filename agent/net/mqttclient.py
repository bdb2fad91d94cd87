"""One small adapter over paho-mqtt 1.6 (Debian 12, Raspberry Pi OS) and 2.x.

paho 2.0 changed the Client constructor and every callback signature. Rather
than branch on the version all over the agent, everything MQTT goes through
`MqttClient`, which offers one shape on both:

    from agent.net.mqttclient import BrokerUrl, ConnectOptions, MqttClient

    opts = ConnectOptions(url=BrokerUrl.parse("mqtts://broker:8883"), client_id="collector-1",
                          ca_file="/etc/ssl/ca.pem", username="u", password="secret")
    client = MqttClient(opts)
    client.on_connect = lambda ok, reason, session_present: ...     # reason: readable text
    client.on_disconnect = lambda reason: ...                       # reason: readable text
    client.on_publish = lambda mid, reason_code: ...                # reason_code: int, or None
                                                                    #   when unknown (paho 1.x)
    client.on_subscribe = lambda mid, codes: ...                    # granted QoS / reason codes
    client.on_message = lambda topic, payload, qos, retain: ...     # payload: bytes
    client.connect()            # blocking TCP + TLS + CONNECT; raises OSError / ssl.SSLError
    while True:
        if client.loop(1.0) != 0:   # non-zero: the connection is gone; make a new MqttClient
            break

or, to let paho run its own thread and reconnect by itself (a subscriber's way):
`client.connect_async(); client.loop_start(); ...; client.loop_stop()`.

Reason codes are plain ints everywhere: 0 is success, >= 0x80 a failure
(MQTT 5 numbering; on MQTT 3.1.1, CONNACK refusals map to 0x84-0x88 as paho 2
does). A publish denied by a broker ACL is only visible on MQTT 5 with
paho >= 2 (PUBACK reason 0x87): MQTT 3.1.1 has no way to say it, and paho 1.6
drops the PUBACK reason code.

Secrets: `ConnectOptions.password` is excluded from repr() and never logged.
"""

from __future__ import annotations

import dataclasses
import ssl
from typing import Any, Callable, Optional

import paho.mqtt.client as paho

from agent.reading.topics import BrokerUrl

__all__ = ["BrokerUrl", "ConnectOptions", "MqttClient", "Will"]

PAHO_V2 = hasattr(paho, "CallbackAPIVersion")
PROTOCOLS = {"3.1.1": paho.MQTTv311, "5": paho.MQTTv5}
NOT_AUTHORIZED = 0x87
# MQTT 3.1.1 CONNACK return codes 1-5, in MQTT 5 numbering (as paho 2 maps them).
V3_CONNACK = {0: 0, 1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}


@dataclasses.dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclasses.dataclass(frozen=True)
class ConnectOptions:
    url: BrokerUrl
    client_id: str
    keepalive: int = 60
    protocol: str = "3.1.1"  # or "5"
    persistent: bool = True  # clean_session=False (3.1.1) / clean_start=False + session expiry (5)
    session_expiry_s: int = 7 * 86400
    ca_file: str = ""  # "" with mqtts: the system's CA store
    cert_file: str = ""  # client certificate for mTLS
    key_file: str = ""
    username: str = ""
    password: str = dataclasses.field(default="", repr=False)
    will: Optional[Will] = None


def reason_value(rc: Any) -> int:
    """A paho reason code (int, ReasonCode, ReasonCodes) as an int."""
    if isinstance(rc, int):
        return rc
    value = getattr(rc, "value", None)
    return int(value) if value is not None else -1


def connack_reason(rc: Any) -> tuple[int, str]:
    if isinstance(rc, int):  # paho 1.x, MQTT 3.1.1
        return V3_CONNACK.get(rc, 0x80), paho.connack_string(rc)
    return reason_value(rc), str(rc)


class MqttClient:
    """One connection's paho Client, with version-neutral callbacks (see the module docstring)."""

    def __init__(self, opts: ConnectOptions) -> None:
        self.opts = opts
        self.on_connect: Optional[Callable[[bool, str, bool], None]] = None
        self.on_disconnect: Optional[Callable[[str], None]] = None
        self.on_publish: Optional[Callable[[int, Optional[int]], None]] = None
        self.on_subscribe: Optional[Callable[[int, list[int]], None]] = None
        self.on_message: Optional[Callable[[str, bytes, int, bool], None]] = None
        protocol = PROTOCOLS[opts.protocol]
        clean = None if protocol == paho.MQTTv5 else not opts.persistent
        kwargs: dict[str, Any] = {"client_id": opts.client_id, "clean_session": clean, "protocol": protocol}
        if PAHO_V2:
            kwargs["callback_api_version"] = paho.CallbackAPIVersion.VERSION2
        self._client = paho.Client(**kwargs)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_publish = self._published
        self._client.on_subscribe = self._subscribed
        self._client.on_message = self._message
        if opts.url.tls:
            self._client.tls_set(
                ca_certs=opts.ca_file or None,
                certfile=opts.cert_file or None,
                keyfile=opts.key_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if opts.username:
            self._client.username_pw_set(opts.username, opts.password or None)
        if opts.will is not None:
            w = opts.will
            self._client.will_set(w.topic, w.payload, qos=w.qos, retain=w.retain)
        self.is_v5 = protocol == paho.MQTTv5

    # -- connection -------------------------------------------------------
    def _connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.is_v5:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            kwargs["clean_start"] = not self.opts.persistent
            if self.opts.persistent:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.opts.session_expiry_s
                kwargs["properties"] = props
        return kwargs

    def connect(self) -> None:
        """Open the connection and send CONNECT; the answer arrives in on_connect during loop()."""
        self._client.connect(self.opts.url.host, self.opts.url.port, self.opts.keepalive, **self._connect_kwargs())

    def connect_async(self) -> None:
        self._client.connect_async(
            self.opts.url.host, self.opts.url.port, self.opts.keepalive, **self._connect_kwargs()
        )

    def loop(self, timeout: float = 1.0) -> int:
        """Run network I/O for up to `timeout` s; non-zero means the connection is gone."""
        return int(self._client.loop(timeout))

    def loop_start(self) -> None:
        self._client.loop_start()

    def loop_stop(self) -> None:
        self._client.loop_stop()

    def reconnect_delay_set(self, min_s: float, max_s: float) -> None:
        """Backoff of paho's own reconnects (loop_start mode only)."""
        self._client.reconnect_delay_set(min_s, max_s)  # type: ignore[arg-type]

    def disconnect(self) -> None:
        self._client.disconnect()

    def close(self) -> None:
        """Drop the socket without a DISCONNECT (after a refusal, or when the session is over)."""
        sock = self._client.socket()
        if sock is not None:
            sock.close()

    def is_connected(self) -> bool:
        return bool(self._client.is_connected())

    def socket(self) -> Any:
        """The connection's socket (None before connect() or after close()): its TCP_INFO counts the bytes."""
        return self._client.socket()

    # -- messages ---------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Queue a message; returns its mid. Raises ConnectionError when paho refuses it."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise ConnectionError(paho.error_string(info.rc))
        return int(info.mid)

    def subscribe(self, topic: str, qos: int = 1) -> int:
        rc, mid = self._client.subscribe(topic, qos)
        if rc != paho.MQTT_ERR_SUCCESS:
            raise ConnectionError(paho.error_string(rc))
        return int(mid or 0)

    # -- paho callbacks, both API versions (*rest absorbs properties) ------
    def _connected(self, _client: Any, _userdata: Any, flags: Any, rc: Any, *rest: Any) -> None:
        code, text = connack_reason(rc)
        if isinstance(flags, dict):
            session_present = bool(flags.get("session present"))
        else:
            session_present = bool(getattr(flags, "session_present", False))
        if self.on_connect:
            self.on_connect(code == 0, text, session_present)

    def _disconnected(self, _client: Any, _userdata: Any, *args: Any) -> None:
        # 1.x: (rc[, properties]); 2.x: (flags, reason_code, properties)
        rc = args[1] if PAHO_V2 else args[0]
        text = paho.error_string(rc) if isinstance(rc, int) else str(rc)
        if self.on_disconnect:
            self.on_disconnect(text)

    def _published(self, _client: Any, _userdata: Any, mid: int, *rest: Any) -> None:
        # 2.x gives the PUBACK reason code; 1.x drops it.
        code = reason_value(rest[0]) if PAHO_V2 and rest else None
        if self.on_publish:
            self.on_publish(int(mid), code)

    def _subscribed(self, _client: Any, _userdata: Any, mid: int, codes: Any, *rest: Any) -> None:
        if self.on_subscribe:
            self.on_subscribe(int(mid), [reason_value(c) for c in codes])

    def _message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        if self.on_message:
            self.on_message(msg.topic, bytes(msg.payload), int(msg.qos), bool(msg.retain))
