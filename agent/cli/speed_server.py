"""`netprobe speed-server`: a LibreSpeed-compatible server to test throughput against."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
from typing import Optional

from agent.cli.common import err
from agent.cli.exitcodes import EX_FAIL, EX_NOPERM, EX_OK, EX_USAGE
from agent.throughput.server import DEFAULT_PORT, MIB, Limits, SpeedServer, parse_listen


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", default=f"0.0.0.0:{DEFAULT_PORT}", metavar="HOST:PORT", help="where to listen")
    p.add_argument("--max-clients", type=int, default=Limits.max_clients, help="more get HTTP 503")
    p.add_argument(
        "--max-per-address",
        type=int,
        default=Limits.max_per_address,
        help="connections from one address (IPv6: one /64); more get HTTP 429",
    )
    p.add_argument("--max-request-mb", type=float, default=Limits.max_request_bytes / MIB, help="per request (MiB)")
    p.add_argument("--timeout", type=float, default=Limits.stall_timeout_s, help="seconds without progress")
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=Limits.idle_timeout_s,
        help="seconds a connection may wait before or between requests",
    )
    p.add_argument("--head-timeout", type=float, default=Limits.head_timeout_s, help="seconds for a whole request head")
    p.add_argument(
        "--token-file",
        metavar="PATH",
        help="require this shared token (also $NETPROBE_SPEED_TOKEN); kept out of argv so ps cannot show it",
    )


def read_token(path: Optional[str]) -> str:
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    return os.environ.get("NETPROBE_SPEED_TOKEN", "")


async def serve_forever(server: SpeedServer, host: str, port: int) -> None:
    bound = await server.start(host, port)
    print(f"netprobe speed-server listening on {bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    # What an operator of a public instance wants to know when it stops: was it abused?
    print("netprobe speed-server stopped: " + " ".join(f"{k}={v}" for k, v in dataclasses.asdict(server.stats).items()))


def main(args: argparse.Namespace) -> int:
    def fail(message: str, code: int) -> int:
        err(message)
        return code

    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        return fail(str(exc), EX_USAGE)
    numbers = ("max_clients", "max_per_address", "max_request_mb", "timeout", "idle_timeout", "head_timeout")
    bad = [f"--{name.replace('_', '-')}" for name in numbers if not getattr(args, name) > 0]
    if bad:
        return fail(f"{', '.join(bad)} must be positive", EX_USAGE)
    try:
        token = read_token(args.token_file)
    except OSError as exc:
        return fail(f"cannot read token file: {exc.strerror}", EX_USAGE)
    limits = Limits(
        max_clients=args.max_clients,
        max_per_address=args.max_per_address,
        max_request_bytes=int(args.max_request_mb * MIB),
        stall_timeout_s=args.timeout,
        idle_timeout_s=args.idle_timeout,
        head_timeout_s=args.head_timeout,
        token=token,
    )
    try:
        asyncio.run(serve_forever(SpeedServer(limits), host, port))
    except PermissionError:
        return fail(f"no permission to listen on {host}:{port} (ports below 1024 need root)", EX_NOPERM)
    except OSError as exc:
        return fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", EX_FAIL)
    return EX_OK
