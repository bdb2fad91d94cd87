"""The `iperf3` backend: runs the iperf3 client where the binary exists and reads its JSON (-J).

iperf3 needs an iperf3 server (`iperf3 -s`) at the far end, not a web server;
it is the trusted peer the http backend is checked against.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Any, Optional

from agent.net.hostport import split_host_port
from agent.reading.model import BAD_TARGET, PROTOCOL_ERROR, REFUSED, TIMEOUT, ProbeFailure
from agent.throughput.echoping import ServerRtt
from agent.throughput.result import Phase

DEFAULT_PORT = 5201


def parse_json(text: str) -> Phase:
    """One direction's goodput, as the receiver counted it, from `iperf3 -J` output."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ProbeFailure(PROTOCOL_ERROR, "iperf3 printed no JSON") from None
    if not isinstance(data, dict):
        raise ProbeFailure(PROTOCOL_ERROR, "iperf3 JSON is not an object")
    if data.get("error"):
        message = str(data["error"])
        code = REFUSED if "refused" in message or "unable to connect" in message else PROTOCOL_ERROR
        raise ProbeFailure(code, f"iperf3: {message}")
    end: dict[str, Any] = data.get("end") or {}
    received = end.get("sum_received") or {}
    sent = end.get("sum_sent") or {}
    if "bits_per_second" not in received:
        raise ProbeFailure(PROTOCOL_ERROR, "iperf3 JSON has no end.sum_received")
    streams = len(end.get("streams") or []) or int(
        (data.get("start") or {}).get("test_start", {}).get("num_streams", 1)
    )
    rtts = [s["sender"]["mean_rtt"] for s in end.get("streams") or [] if "mean_rtt" in s.get("sender", {})]
    return Phase(
        bps=float(received["bits_per_second"]),
        bytes_moved=int(max(sent.get("bytes", 0), received.get("bytes", 0))),
        seconds=float(received.get("seconds") or sent.get("seconds") or 0.0),
        streams=streams,
        stop_reason="time_cap",
        sender_rtt_ms=round(sum(rtts) / len(rtts) / 1000.0, 3) if rtts else None,
    )


def command(host: str, port: int, seconds: float, streams: int, reverse: bool, omit_s: float) -> list[str]:
    argv = ["iperf3", "-c", host, "-p", str(port), "-J", "-t", f"{seconds:g}", "-P", str(streams)]
    if omit_s > 0:
        argv += ["-O", f"{omit_s:g}"]
    if reverse:
        argv.append("-R")  # the server sends: the node's download
    return argv


async def run_direction(
    host: str, port: int, seconds: float, streams: int, reverse: bool, omit_s: float = 1.0
) -> Phase:
    binary = shutil.which("iperf3")
    if binary is None:
        raise ProbeFailure(BAD_TARGET, "iperf3 is not installed (apt-get install iperf3)")
    argv = command(host, port, seconds, streams, reverse, omit_s)
    proc = await asyncio.create_subprocess_exec(
        binary, *argv[1:], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), seconds + omit_s + 15.0)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise ProbeFailure(TIMEOUT, f"iperf3 to {host}:{port} did not finish") from None
    return parse_json(out.decode("utf-8", "replace"))


async def measure_with_rtt(
    target: str, seconds: float, streams: int, up: bool = True
) -> tuple[Phase, Optional[Phase], list[float], str]:
    """Both directions, with RTTs to the iperf3 server: idle first, then during each run; and how
    they were measured (ICMP echoes, else handshakes to the iperf3 port)."""
    host, port = split_host_port(target, DEFAULT_PORT)
    rtt = ServerRtt(host, port)
    try:
        idle = await rtt.idle()

        async def loaded(reverse: bool) -> Phase:
            phase, rtts = await rtt.during(run_direction(host, port, seconds, streams, reverse=reverse))
            phase.loaded_rtts = rtts
            return phase

        down = await loaded(True)
        upload = await loaded(False) if up else None
    finally:
        rtt.close()
    return down, upload, idle, rtt.method
