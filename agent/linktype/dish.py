"""The Starlink dish's own telemetry: status and history over its gRPC API (192.168.100.1:9200).

grpcio and protobuf are imported inside `read_dish`, so a node without a dish (or without
them installed) pays nothing and gets a plain "optional part missing" failure. The dish's
schema is not compiled in: it is fetched from the dish by gRPC server reflection (as
starlink-grpc-tools does), so fields are read by name and survive SpaceX renumbering or
dropping them between firmware releases; a field the firmware lacks is simply not
reported. The reflection messages themselves are declared here from descriptor protos,
because Debian 12 packages grpcio and protobuf but not grpcio-reflection.

Each request stands alone: a dish that refuses history (UNIMPLEMENTED, PERMISSION_DENIED)
still gives its status, and the Reading says what was refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, Optional

from agent.net.hostport import split_host_port
from agent.reading.model import NOT_INSTALLED, PROTOCOL_ERROR, REFUSED, TIMEOUT, UNREACHABLE, FieldValue, ProbeFailure
from agent.stats import percentile

SERVICE = "SpaceX.API.Device.Device"
HANDLE = f"/{SERVICE}/Handle"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
MISSING = "optional part missing: install python3-grpcio and python3-protobuf (or pip install 'netprobe-agent[dish]')"
HISTORY_WINDOW = 900  # the history ring holds one sample a second; the last 15 min are summarised
MAX_DEPENDENCIES = 64


@dataclasses.dataclass
class Telemetry:
    fields: dict[str, FieldValue] = dataclasses.field(default_factory=dict)
    refused: list[str] = dataclasses.field(default_factory=list)


def _protobuf() -> Any:
    try:
        import grpc
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:
        raise ProbeFailure(NOT_INSTALLED, MISSING) from None
    return grpc, descriptor_pb2, descriptor_pool, message_factory


def _message_class(message_factory: Any, pool: Any, name: str) -> Any:
    desc = pool.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.21
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)  # Debian 12's 3.21


def _reflection_classes(descriptor_pb2: Any, descriptor_pool: Any, message_factory: Any) -> tuple[Any, Any]:
    """ServerReflectionRequest and ServerReflectionResponse (the fields used; oneofs need no declaring)."""
    f = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="netprobe/reflection.proto", package="grpc.reflection.v1alpha")
    fdp.syntax = "proto3"

    def message(name: str, fields: Sequence[tuple[str, int, int, str, int]]) -> None:
        m = fdp.message_type.add(name=name)
        for field_name, number, kind, type_name, label in fields:
            fd = m.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                fd.type_name = type_name

    one, many = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    pkg = ".grpc.reflection.v1alpha."
    message("ServerReflectionRequest", [("host", 1, f.TYPE_STRING, "", one),
                                        ("file_by_filename", 3, f.TYPE_STRING, "", one),
                                        ("file_containing_symbol", 4, f.TYPE_STRING, "", one)])  # fmt: skip
    message("FileDescriptorResponse", [("file_descriptor_proto", 1, f.TYPE_BYTES, "", many)])
    message("ErrorResponse", [("error_code", 1, f.TYPE_INT32, "", one), ("error_message", 2, f.TYPE_STRING, "", one)])
    message("ServerReflectionResponse", [("valid_host", 1, f.TYPE_STRING, "", one),
                                         ("file_descriptor_response", 4, f.TYPE_MESSAGE, pkg + "FileDescriptorResponse", one),
                                         ("error_response", 7, f.TYPE_MESSAGE, pkg + "ErrorResponse", one)])  # fmt: skip
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(fdp.SerializeToString())
    return (
        _message_class(message_factory, pool, "grpc.reflection.v1alpha.ServerReflectionRequest"),
        _message_class(message_factory, pool, "grpc.reflection.v1alpha.ServerReflectionResponse"),
    )


def _rpc_failure(grpc: Any, exc: Any, what: str) -> ProbeFailure:
    code = exc.code() if hasattr(exc, "code") else None
    detail = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE:
        return ProbeFailure(UNREACHABLE, f"no Starlink dish answers ({what}): {detail}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ProbeFailure(TIMEOUT, f"the dish did not answer in time ({what})")
    if code in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED):
        return ProbeFailure(REFUSED, f"the dish refused {what}: {code.name}")
    return ProbeFailure(PROTOCOL_ERROR, f"{what}: {getattr(code, 'name', code)} {detail}")


def fetch_schema(channel: Any, timeout: float) -> tuple[Any, Any, Any]:
    """(Request class, Response class, the pool) of the dish's Device service, by server reflection."""
    grpc, descriptor_pb2, descriptor_pool, message_factory = _protobuf()
    request_cls, response_cls = _reflection_classes(descriptor_pb2, descriptor_pool, message_factory)
    stream = channel.stream_stream(
        REFLECTION, request_serializer=lambda m: m.SerializeToString(), response_deserializer=response_cls.FromString
    )
    files: dict[str, Any] = {}

    def ask(requests: Iterable[Any]) -> None:
        try:
            for answer in stream(iter(list(requests)), timeout=timeout):
                if answer.HasField("error_response"):
                    continue  # a dependency the dish does not serve: reported if the schema stays incomplete
                for raw in answer.file_descriptor_response.file_descriptor_proto:
                    fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
                    files.setdefault(fdp.name, fdp)
        except grpc.RpcError as exc:
            raise _rpc_failure(grpc, exc, "server reflection") from None

    ask([request_cls(file_containing_symbol=SERVICE)])
    for _ in range(MAX_DEPENDENCIES):
        wanted = sorted({d for f in files.values() for d in f.dependency} - set(files))
        if not wanted:
            break
        before = len(files)
        ask(request_cls(file_by_filename=name) for name in wanted)
        if len(files) == before:
            raise ProbeFailure(PROTOCOL_ERROR, f"the dish's schema is incomplete: {', '.join(wanted)} not served")
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added or name not in files:
            return
        added.add(name)
        for dep in files[name].dependency:
            add(dep)
        pool.AddSerializedFile(files[name].SerializeToString())

    for name in sorted(files):
        add(name)
    try:
        method = pool.FindServiceByName(SERVICE).FindMethodByName("Handle")
    except KeyError:
        raise ProbeFailure(PROTOCOL_ERROR, f"no {SERVICE}/Handle in the dish's schema") from None
    request = _message_class(message_factory, pool, method.input_type.full_name)
    response = _message_class(message_factory, pool, method.output_type.full_name)
    return request, response, pool


def value(message: Any, path: str) -> Any:
    """The field at a dotted path, by name; None when this firmware lacks it or a message is unset."""
    for name in path.split("."):
        if message is None:
            return None
        field = message.DESCRIPTOR.fields_by_name.get(name)
        if field is None:
            return None
        if field.type == field.TYPE_MESSAGE and not _repeated(field) and not message.HasField(name):
            return None
        message = getattr(message, name)
    return message


def _repeated(field: Any) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 6; `label` is deprecated there
    return bool(flag) if flag is not None else field.label == field.LABEL_REPEATED


def enum_name(message: Any, path: str) -> Optional[str]:
    parent_path, _, name = path.rpartition(".")
    parent = value(message, parent_path) if parent_path else message
    number = value(message, path)
    if parent is None or number is None:
        return None
    field = parent.DESCRIPTOR.fields_by_name[name]
    if field.enum_type is None:
        return str(number)
    found = field.enum_type.values_by_number.get(int(number))
    return found.name if found is not None else str(number)


def _number(x: Any, digits: int = 4) -> Optional[float]:
    return round(float(x), digits) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


STATUS_NUMBERS = {
    "pop_ping_latency_ms": "pop_ping_latency_ms",
    "pop_ping_drop_rate": "pop_ping_drop_rate",
    "obstruction_fraction": "obstruction_stats.fraction_obstructed",
    "uptime_s": "device_state.uptime_s",
    "downlink_bps": "downlink_throughput_bps",
    "uplink_bps": "uplink_throughput_bps",
}


def status_fields(status: Any) -> dict[str, FieldValue]:
    out: dict[str, FieldValue] = {}
    for key, path in STATUS_NUMBERS.items():
        number = _number(value(status, path))
        if number is not None:
            out[key] = int(number) if key == "uptime_s" else number
    obstructed = value(status, "obstruction_stats.currently_obstructed")
    if isinstance(obstructed, bool):
        out["obstructed_now"] = obstructed
    for key, path in (("software", "device_info.software_version"), ("hardware", "device_info.hardware_version")):
        text = value(status, path)
        if isinstance(text, str) and text:
            out[key] = text
    alerts = value(status, "alerts")
    if alerts is not None:  # every alert the firmware has is a bool field; the set ones are on
        on = sorted(f.name for f, v in alerts.ListFields() if v is True)
        out["alerts"] = "+".join(on)
        out["alert_count"] = len(on)
    cause = enum_name(status, "outage.cause")
    if value(status, "outage") is not None and cause:
        out["outage_now"] = cause
    state = enum_name(status, "state")  # older firmware only
    if state:
        out["state"] = state
    return out


def history_fields(history: Any) -> dict[str, FieldValue]:
    out: dict[str, FieldValue] = {}
    drops = list(value(history, "pop_ping_drop_rate") or [])
    latency = list(value(history, "pop_ping_latency_ms") or [])
    current = value(history, "current")
    if drops and isinstance(current, int):
        # a ring buffer: sample k sits at k % len; take the last HISTORY_WINDOW seconds before `current`
        n = min(len(drops), current, HISTORY_WINDOW)
        idx = [(current - 1 - i) % len(drops) for i in range(n)]
        window_drops = [drops[i] for i in idx]
        window_lat = [latency[i] for i in idx if i < len(latency) and drops[i] < 1.0]
        if window_drops:
            out["drop_rate_15m"] = round(sum(window_drops) / len(window_drops), 4)
        if window_lat:
            out["latency_p50_15m_ms"] = round(percentile(sorted(window_lat), 50), 2)
    outages = value(history, "outages")
    if outages is not None:
        causes: dict[str, int] = {}
        total_ns = 0
        for o in outages:
            name = enum_name(o, "cause") or "UNKNOWN"
            causes[name] = causes.get(name, 0) + 1
            total_ns += int(value(o, "duration_ns") or 0)
        out["outages"] = len(outages)
        out["outage_s"] = round(total_ns / 1e9, 1)
        out["outage_causes"] = ",".join(f"{k}:{v}" for k, v in sorted(causes.items(), key=lambda kv: -kv[1]))
        if len(outages):
            last = max(outages, key=lambda o: int(value(o, "start_timestamp_ns") or 0))
            out["last_outage_cause"] = enum_name(last, "cause") or "UNKNOWN"
    return out


def read_dish(address: str, timeout: float = 5.0) -> Telemetry:
    """Status and history of the dish at `address` (blocking: run it in a thread)."""
    grpc = _protobuf()[0]
    host, port = split_host_port(address, 9200)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        request_cls, response_cls, _ = fetch_schema(channel, timeout)
        handle = channel.unary_unary(
            HANDLE, request_serializer=lambda m: m.SerializeToString(), response_deserializer=response_cls.FromString
        )
        telemetry = Telemetry()
        got_any = False
        for ask, answer, fields_of in (
            ("get_status", "dish_get_status", status_fields),
            ("get_history", "dish_get_history", history_fields),
        ):
            if ask not in request_cls.DESCRIPTOR.fields_by_name:
                telemetry.refused.append(ask)  # this firmware has no such request
                continue
            request = request_cls()
            getattr(request, ask).SetInParent()
            try:
                response = handle(request, timeout=timeout)
            except grpc.RpcError as exc:
                failure = _rpc_failure(grpc, exc, ask)
                if failure.code != REFUSED:
                    raise failure from None
                telemetry.refused.append(ask)
                continue
            part = value(response, answer)
            if part is None:
                telemetry.refused.append(ask)  # answered, but not with what was asked
                continue
            got_any = True
            telemetry.fields.update(fields_of(part))
        if not got_any:
            raise ProbeFailure(
                REFUSED, f"the dish answered neither status nor history ({', '.join(telemetry.refused)})"
            )
        return telemetry
