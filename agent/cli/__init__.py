"""The `netprobe` command line.

Exit codes: 0 ok/healthy, 1 failed/degraded, 2 down, 64 bad usage,
70 internal error, 77 missing privileges, 78 config error (EX_CONFIG).
Bad input gets one clear line on stderr, never a traceback.

Feature commands live in their own modules; each is listed in COMMANDS and
provides `add_arguments(parser)` and `main(args) -> int`. Those modules keep
their heavy imports inside `main`, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, Optional

from agent import __version__

EX_OK, EX_FAIL, EX_USAGE, EX_SOFTWARE, EX_NOPERM, EX_CONFIG = 0, 1, 64, 70, 77, 78

# (command, module, one-line help); the module provides add_arguments() and main().
COMMANDS: list[tuple[str, str, str]] = [
    ("run", "agent.cli.run", "run the agent: measure on schedule, spool, publish over MQTT"),
    ("spool", "agent.cli.spool", "the store-and-forward spool: status, or flush to the broker now"),
    ("speed-server", "agent.throughput.server", "LibreSpeed-compatible speed test server to test against"),
    ("collect", "agent.cli.collect", "the regency's collector: subscribe, validate, store readings"),
    ("fleet", "agent.cli.fleet", "the fleet view: dark desa, link types, per kecamatan (text, JSON, HTML)"),
]


def err(message: str) -> None:
    print(f"netprobe: {message}", file=sys.stderr)


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c", "--config", metavar="PATH", help="config file (default: $NETPROBE_CONFIG or /etc/netprobe/agent.toml)"
    )


class Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage; 2 means "down" here, so usage errors exit 64."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        err(message)
        raise SystemExit(EX_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="netprobe", description="Network probe agent for village access nodes.")
    parser.add_argument("--version", action="version", version=f"netprobe {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("probe", help="run one probe once")
    p.add_argument("kind", help="icmp, tcp, dns, http, ...")
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
    p.set_defaults(handler=cmd_probe)

    p = sub.add_parser("diagnose", help="one-shot check of LAN, gateway, uplink, DNS and web")
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help='print {"verdict": ..., "readings": [...]}')
    p.add_argument("--lang", choices=("en", "id"), default="en", help="language of verdicts and hints")
    p.add_argument("--no-throughput", action="store_true", help="skip the throughput test (it costs data)")
    p.set_defaults(handler=cmd_diagnose)

    p = sub.add_parser("check-config", help="validate a config file (exit 0 valid, 78 invalid)")
    p.add_argument("path", nargs="?", help="config file")
    add_config_arg(p)
    p.set_defaults(handler=cmd_check_config)

    for name, module_name, help_text in COMMANDS:
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text)
        module.add_arguments(p)
        p.set_defaults(handler=module.main)
    return parser


def load_config_or_exit(path: Optional[str]) -> Any:
    from agent.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.summary().splitlines():
            err(line)
        raise SystemExit(EX_CONFIG) from None


def parse_option(text: str) -> tuple[str, Any]:
    """KEY=VALUE, where VALUE is read as a TOML value when it is one, else as a string."""
    from agent.config import tomllib

    key, sep, value = text.partition("=")
    if not sep or not key:
        err(f"bad option '{text}': expected KEY=VALUE")
        raise SystemExit(EX_USAGE)
    try:
        return key.strip(), tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value


def cmd_probe(args: argparse.Namespace) -> int:
    from agent import probes
    from agent.config import ConfigError
    from agent.runner import adhoc_target, identity_of, run_target

    if args.kind not in probes.registry():
        err(f"unknown probe '{args.kind}'; choose one of: {', '.join(probes.registry())}")
        return EX_USAGE
    options: dict[str, Any] = dict(parse_option(o) for o in args.option)
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
    reading = asyncio_run(run_target(target, identity_of(cfg)))
    if args.json:
        print(reading.to_json())
    else:
        print(format_reading(reading))
    if reading.ok:
        return EX_OK
    assert reading.error is not None
    if not args.json:
        err(f"{args.kind} {args.target}: {reading.error['message']}")
    return {"bad_target": EX_USAGE, "permission": EX_NOPERM}.get(reading.error["code"], EX_FAIL)


def load_config_quietly() -> Any:
    """The node's identity for an ad-hoc probe: its config if valid, else the defaults."""
    from agent.config import ConfigError, load_config, parse_config

    try:
        return load_config()
    except ConfigError:
        return parse_config({})


def asyncio_run(coro: Any) -> Any:
    import asyncio  # not at module level: `netprobe --version` must not pay for it

    return asyncio.run(coro)


def format_reading(reading: Any) -> str:
    status = "OK" if reading.ok else f"FAIL ({reading.error['code']})"
    fields = "  ".join(f"{k}={v}" for k, v in reading.fields.items())
    return f"{status}  {reading.measurement} {reading.target}  {fields}".rstrip()


def cmd_diagnose(args: argparse.Namespace) -> int:
    from agent.diagnose.run import diagnose

    cfg = load_config_or_exit(args.config)
    result = asyncio_run(diagnose(cfg, args))
    print(result.to_json() if args.json else result.render(args.lang))
    return result.exit_code


def cmd_check_config(args: argparse.Namespace) -> int:
    path = args.path or args.config
    cfg = load_config_or_exit(path)
    print(f"{cfg.source}: OK ({len(cfg.targets)} targets, node '{cfg.node.resolved_id()}')")
    return EX_OK


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:  # the fast path: nothing else imported
        print(f"netprobe {__version__}")
        return EX_OK
    import logging

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EX_USAGE
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `netprobe diagnose --json | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return EX_OK
    except SystemExit as exc:
        return int(exc.code or 0)
    except Exception as exc:  # the last guard: one line, never a traceback
        logging.getLogger("netprobe").debug("internal error", exc_info=True)
        err(f"internal error: {type(exc).__name__}: {exc} (run with -v for details)")
        return EX_SOFTWARE
