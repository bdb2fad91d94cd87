"""`netprobe probe KIND TARGET`: one probe, once, printed as a line or as the Reading's JSON."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses

from agent import probes
from agent.cli.common import err, load_config_quietly
from agent.cli.exitcodes import EX_FAIL, EX_NOPERM, EX_OK, EX_USAGE
from agent.config import tomllib
from agent.reading.model import BAD_TARGET, PERMISSION, Reading
from agent.runner import adhoc_target, identity_of, run_target
from agent.schema import ConfigError, TomlValue

EXIT_FOR_ERROR = {BAD_TARGET: EX_USAGE, PERMISSION: EX_NOPERM}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", help=", ".join(probes.kinds()))
    p.add_argument("target", help='host, host:port, name or URL ("gateway" = default gateway)')
    p.add_argument("--count", type=int, help="requests per run")
    p.add_argument("--interval", type=float, help="seconds between requests")
    p.add_argument("--timeout", type=float, help="seconds to wait for each answer")
    p.add_argument("--port", type=int, help="tcp: port when the target has none")
    p.add_argument("--server", help='dns: "system" or host[:port] of the server to ask')
    p.add_argument("--record", help="dns: record type (A, AAAA, MX, ...)")
    p.add_argument("--insecure", action="store_true", help="http: do not verify the TLS certificate")
    p.add_argument("--mode", choices=("icmp", "udp", "tcp"), help="path: probe packets (Paris traceroute)")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="any probe option")
    p.add_argument("--json", action="store_true", help="print the Reading as JSON")


def parse_option(text: str) -> tuple[str, TomlValue]:
    """KEY=VALUE, where VALUE is read as a TOML value when it is one, else as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        err(f"bad option '{text}': expected KEY=VALUE")
        raise SystemExit(EX_USAGE)
    try:
        parsed: TomlValue = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def format_reading(reading: Reading) -> str:
    status = "OK" if reading.ok or reading.error is None else f"FAIL ({reading.error['code']})"
    fields = "  ".join(f"{k}={v}" for k, v in reading.fields.items())
    return f"{status}  {reading.measurement} {reading.target}  {fields}".rstrip()


def main(args: argparse.Namespace) -> int:
    if args.kind not in probes.kinds():
        err(f"unknown probe '{args.kind}'; choose one of: {', '.join(probes.kinds())}")
        return EX_USAGE
    options: dict[str, TomlValue] = dict(parse_option(o) for o in args.option)
    flags = {
        "count": args.count,
        "packet_interval": args.interval,
        "port": args.port,
        "server": args.server,
        "record": args.record,
        "mode": args.mode,
    }
    options.update({k: v for k, v in flags.items() if v is not None})
    if args.insecure:
        options["verify_tls"] = False
    try:
        target = adhoc_target(args.kind, args.target, args.timeout, **options)
    except ConfigError as exc:
        for p in exc.problems:
            err(f"{args.kind}: option {p}")
        return EX_USAGE
    cfg = load_config_quietly()
    # The config's sections ([linktype] operators, ...) apply; its state (ledger, remembered verdict)
    # stays the daemon's: an ad-hoc run neither reads nor changes it.
    ctx = dataclasses.replace(cfg.probe_context(interactive=True), state_dir="")
    reading = asyncio.run(run_target(target, identity_of(cfg), ctx))
    print(reading.to_json() if args.json else format_reading(reading))
    if reading.ok or reading.error is None:
        return EX_OK
    if not args.json:
        err(f"{args.kind} {args.target}: {reading.error['message']}")
    return EXIT_FOR_ERROR.get(reading.error["code"], EX_FAIL)
