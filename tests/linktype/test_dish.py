"""The `dish` probe against a local gRPC server speaking the dish's service, with reflection.

The server (grpcio + grpcio-reflection, from the test extra) serves SpaceX.API.Device.Device/
Handle on loopback with a schema built here from descriptor protos, with the published field
numbers: the full one, one of a later firmware (a field gone, an alert added), one that refuses
history, one that refuses everything, one without reflection. The node side must read what is
there, say what was refused, and fail plainly without grpcio.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from typing import Any, Callable

import pytest

grpc = pytest.importorskip("grpc")
reflection = pytest.importorskip("grpc_reflection.v1alpha.reflection")
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402

from agent.config import parse_config  # noqa: E402
from agent.reading.model import NOT_INSTALLED, REFUSED  # noqa: E402
from agent.runner import run_target  # noqa: E402
from tests.testbed.bed import REPO  # noqa: E402

F = descriptor_pb2.FieldDescriptorProto
PKG = "SpaceX.API.Device"
OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED


def schema(firmware: str = "2024") -> descriptor_pool.DescriptorPool:
    """The part of spacex/api/device/*.proto a dish serves that the probe reads (published numbers)."""
    dish = descriptor_pb2.FileDescriptorProto(name="spacex/api/device/dish.proto", package=PKG, syntax="proto3")
    cause = dish.enum_type.add(name="DishOutageCause")  # nested in DishOutage on the dish; flat here
    for i, name in enumerate(["UNKNOWN", "BOOTING", "STOWED", "THERMAL_SHUTDOWN", "NO_SCHEDULE", "NO_SATS",
                              "OBSTRUCTED", "NO_DOWNLINK", "NO_PINGS"]):  # fmt: skip
        cause.value.add(name=name, number=i)

    def message(file: Any, name: str, fields: list[tuple[str, int, int, str, int]]) -> None:
        m = file.message_type.add(name=name)
        for field_name, number, kind, type_name, label in fields:
            fd = m.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                fd.type_name = f".{PKG}.{type_name}"

    message(dish, "DeviceInfo", [("id", 1, F.TYPE_STRING, "", OPT), ("hardware_version", 2, F.TYPE_STRING, "", OPT),
                                 ("software_version", 3, F.TYPE_STRING, "", OPT)])  # fmt: skip
    message(dish, "DeviceState", [("uptime_s", 3, F.TYPE_UINT64, "", OPT)])
    message(dish, "DishObstructionStats", [("fraction_obstructed", 1, F.TYPE_FLOAT, "", OPT),
                                           ("currently_obstructed", 5, F.TYPE_BOOL, "", OPT)])  # fmt: skip
    alerts = [("motors_stuck", 1), ("thermal_shutdown", 2), ("thermal_throttle", 3), ("unexpected_location", 8)]
    if firmware == "2025":
        alerts.append(("power_supply_thermal_throttle", 22))  # new in a later firmware
    message(dish, "DishAlerts", [(n, k, F.TYPE_BOOL, "", OPT) for n, k in alerts])
    message(dish, "DishOutage", [("cause", 1, F.TYPE_ENUM, "DishOutageCause", OPT),
                                 ("start_timestamp_ns", 2, F.TYPE_INT64, "", OPT),
                                 ("duration_ns", 3, F.TYPE_UINT64, "", OPT)])  # fmt: skip
    status = [("device_info", 1, F.TYPE_MESSAGE, "DeviceInfo", OPT), ("device_state", 2, F.TYPE_MESSAGE, "DeviceState", OPT),
              ("pop_ping_drop_rate", 1003, F.TYPE_FLOAT, "", OPT),
              ("obstruction_stats", 1004, F.TYPE_MESSAGE, "DishObstructionStats", OPT),
              ("alerts", 1005, F.TYPE_MESSAGE, "DishAlerts", OPT),
              ("downlink_throughput_bps", 1007, F.TYPE_FLOAT, "", OPT),
              ("uplink_throughput_bps", 1008, F.TYPE_FLOAT, "", OPT),
              ("outage", 1014, F.TYPE_MESSAGE, "DishOutage", OPT)]  # fmt: skip
    if firmware != "2025":
        status.append(("pop_ping_latency_ms", 1009, F.TYPE_FLOAT, "", OPT))  # gone in the later firmware
    message(dish, "DishGetStatusResponse", status)
    message(dish, "DishGetHistoryResponse", [("current", 1, F.TYPE_UINT64, "", OPT),
                                             ("pop_ping_drop_rate", 1001, F.TYPE_FLOAT, "", REP),
                                             ("pop_ping_latency_ms", 1002, F.TYPE_FLOAT, "", REP),
                                             ("outages", 1009, F.TYPE_MESSAGE, "DishOutage", REP)])  # fmt: skip
    device = descriptor_pb2.FileDescriptorProto(name="spacex/api/device/device.proto", package=PKG, syntax="proto3")
    device.dependency.append(dish.name)
    message(device, "GetStatusRequest", [])
    message(device, "GetHistoryRequest", [])
    message(device, "Request", [("id", 1, F.TYPE_UINT64, "", OPT), ("get_status", 1004, F.TYPE_MESSAGE, "GetStatusRequest", OPT),
                                ("get_history", 1007, F.TYPE_MESSAGE, "GetHistoryRequest", OPT)])  # fmt: skip
    message(device, "Response", [("id", 1, F.TYPE_UINT64, "", OPT),
                                 ("dish_get_status", 2004, F.TYPE_MESSAGE, "DishGetStatusResponse", OPT),
                                 ("dish_get_history", 2006, F.TYPE_MESSAGE, "DishGetHistoryResponse", OPT)])  # fmt: skip
    service = device.service.add(name="Device")
    service.method.add(name="Handle", input_type=f".{PKG}.Request", output_type=f".{PKG}.Response")
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(dish.SerializeToString())
    pool.AddSerializedFile(device.SerializeToString())
    return pool


def cls(pool: descriptor_pool.DescriptorPool, name: str) -> Any:
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PKG}.{name}"))


def answer(pool: descriptor_pool.DescriptorPool, request: Any, refuse: tuple[str, ...]) -> Any:
    response = cls(pool, "Response")()
    which = request.WhichOneof("request") if request.DESCRIPTOR.oneofs else None
    asked = which or ("get_status" if request.HasField("get_status") else "get_history")
    if asked in refuse:
        return None
    if asked == "get_status":
        s = response.dish_get_status
        s.device_info.software_version = "2024.11.21.mr46196.1"
        s.device_state.uptime_s = 3600
        s.pop_ping_drop_rate = 0.01
        s.obstruction_stats.fraction_obstructed = 0.025
        s.alerts.thermal_throttle = True
        if "pop_ping_latency_ms" in s.DESCRIPTOR.fields_by_name:
            s.pop_ping_latency_ms = 31.5
        else:
            s.alerts.power_supply_thermal_throttle = True
    else:
        h = response.dish_get_history
        h.current = 1200
        h.pop_ping_drop_rate.extend([0.0] * 1000 + [1.0] * 100 + [0.0] * 100)
        h.pop_ping_latency_ms.extend([30.0] * 1200)
        for cause, start, seconds in ((6, 10, 2.0), (4, 20, 1.5), (6, 30, 0.5)):
            o = h.outages.add()
            o.cause, o.start_timestamp_ns, o.duration_ns = cause, start * 10**9, int(seconds * 1e9)
    return response


@pytest.fixture
def dish() -> Iterator[Callable[..., str]]:
    servers: list[Any] = []

    def start(firmware: str = "2024", refuse: tuple[str, ...] = (), with_reflection: bool = True) -> str:
        pool = schema(firmware)
        request_cls = cls(pool, "Request")

        def handle(request: Any, context: Any) -> Any:
            response = answer(pool, request, refuse)
            if response is None:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, "not on this firmware")
            return response

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.unary_unary_rpc_method_handler(
            handle, request_deserializer=request_cls.FromString, response_serializer=lambda m: m.SerializeToString()
        )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(f"{PKG}.Device", {"Handle": handler}),))
        if with_reflection:
            reflection.enable_server_reflection((f"{PKG}.Device", reflection.SERVICE_NAME), server, pool=pool)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(0)


def probe(address: str) -> Any:
    cfg = parse_config({"targets": [{"kind": "dish", "target": address}]})
    return asyncio.run(run_target(cfg.targets[0], __import__("agent.runner").runner.identity_of(cfg)))


def test_status_and_history_become_reading_fields(dish):
    reading = probe(dish())
    assert reading.ok, reading.error
    f = reading.fields
    assert f["pop_ping_latency_ms"] == 31.5 and f["pop_ping_drop_rate"] == 0.01
    assert f["obstruction_fraction"] == 0.025 and f["uptime_s"] == 3600
    assert f["alerts"] == "thermal_throttle" and f["alert_count"] == 1 and f["software"].startswith("2024.11")
    # the last 900 s of the ring before `current` (1200): 100 s of total loss among them
    assert f["drop_rate_15m"] == pytest.approx(100 / 900, abs=1e-3) and f["latency_p50_15m_ms"] == 30.0
    assert (f["outages"], f["outage_s"], f["outage_causes"]) == (3, 4.0, "OBSTRUCTED:2,NO_SCHEDULE:1")
    assert f["last_outage_cause"] == "OBSTRUCTED" and f["refused"] == ""


def test_a_later_firmware_without_a_field_and_with_a_new_alert_still_reads(dish):
    f = probe(dish(firmware="2025")).fields
    assert "pop_ping_latency_ms" not in f and f["pop_ping_drop_rate"] == 0.01
    assert f["alerts"] == "power_supply_thermal_throttle+thermal_throttle" and f["alert_count"] == 2


def test_a_refused_history_leaves_the_status_and_says_so(dish):
    reading = probe(dish(refuse=("get_history",)))
    assert reading.ok and reading.fields["refused"] == "get_history"
    assert reading.fields["pop_ping_latency_ms"] == 31.5 and "outages" not in reading.fields


def test_a_dish_refusing_everything_or_serving_no_reflection_fails_plainly(dish):
    everything = probe(dish(refuse=("get_status", "get_history")))
    assert not everything.ok and everything.error["code"] == REFUSED
    assert "neither status nor history" in everything.error["message"]
    blind = probe(dish(with_reflection=False))
    assert not blind.ok and blind.error["code"] == REFUSED and "reflection" in blind.error["message"]


def test_the_cli_reads_a_dish(dish):
    out = subprocess.run([sys.executable, "-m", "agent", "probe", "dish", dish(), "--json"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
    assert json.loads(out.stdout)["fields"]["pop_ping_latency_ms"] == 31.5, out.stderr


def test_without_grpcio_the_reading_says_which_package_to_install():
    code = (
        "import sys; sys.modules['grpc'] = None\n"
        "from agent.cli import main; sys.exit(main(['probe', 'dish', '192.0.2.1:9200', '--json']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    reading = json.loads(out.stdout)
    assert reading["error"]["code"] == NOT_INSTALLED and "python3-grpcio" in reading["error"]["message"]
    assert "Traceback" not in out.stderr


DEBIAN_PYTHON = "/usr/bin/python3"


def debian_grpc() -> bool:
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import grpc, google.protobuf"], capture_output=True, timeout=30)
    return probe.returncode == 0


def test_debian_12s_grpcio_and_protobuf_read_the_dish(dish):
    """python3-grpcio 1.51 and python3-protobuf 3.21 (no grpcio-reflection on Debian 12)."""
    if not debian_grpc():
        pytest.skip("needs python3-grpcio and python3-protobuf: apt-get install python3-grpcio python3-protobuf")
    code = (
        "import sys, json; from agent.linktype.dish import read_dish\n"
        "print(json.dumps(read_dish(sys.argv[1], 3.0).fields))"
    )
    out = subprocess.run([DEBIAN_PYTHON, "-I", "-c", f"import sys; sys.path.insert(0, {REPO!r})\n" + code, dish()],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    fields = json.loads(out.stdout)
    assert fields["pop_ping_latency_ms"] == 31.5 and fields["outage_causes"] == "OBSTRUCTED:2,NO_SCHEDULE:1"
