"""The `netprobe` command line: one module per command, the parser built from COMMANDS.

Exit codes live in `agent.cli.exitcodes`. Bad input gets one clear line on
stderr, never a traceback. `netprobe --version` imports nothing beyond this
file; every other command builds the parser with its own command's arguments
only, so it imports that command's module alone (command modules import their
features at module level, except where a feature is heavy: see each module).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Optional

from agent import __version__
from agent.cli.exitcodes import EX_INTERRUPTED, EX_OK, EX_SOFTWARE, EX_USAGE

if TYPE_CHECKING:
    import argparse

# (command, module under agent.cli, one-line help). Each module has add_arguments(parser) and main(args) -> int.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("probe", "probe", "run one probe once"),
    ("diagnose", "diagnose", "one-shot check of LAN, gateway, uplink, DNS and web"),
    ("check-config", "check_config", "validate a config file (exit 0 valid, 78 invalid)"),
    ("run", "run", "run the agent: measure on schedule, spool, publish over MQTT"),
    ("spool", "spool", "the store-and-forward spool: status, or flush to the broker now"),
    ("usage", "usage", "what the agent's own traffic cost this month, by kind, against its data budget"),
    ("speed-server", "speed_server", "LibreSpeed-compatible speed test server to test against"),
    ("collect", "collect", "the regency's collector: subscribe, validate, store readings"),
    ("fleet", "fleet", "the fleet view: dark desa, link types, per kecamatan (text, JSON, HTML)"),
    ("incidents", "incidents", "incidents: why a desa is dark or degraded, since when, who was told"),
    ("web", "web", "the regency's live view: overview, kecamatan, node and SLA pages, /metrics, /api"),
    ("report", "report", "a month's availability per node, desa, kecamatan and provider (CSV, HTML, JSON)"),
)


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The whole parser, or with `only` the named command's arguments alone: the others are listed
    by name and help, their modules (and the features they import) never loaded. The daemon's
    process so holds the run command's modules, not diagnose's or the speed server's."""
    from agent.cli.common import Parser

    parser = Parser(prog="netprobe", description="Network probe agent for village access nodes.")
    parser.add_argument("--version", action="version", version=f"netprobe {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        p = sub.add_parser(name, help=help_text)
        if only is None or name == only:
            module = importlib.import_module(f"{__name__}.{module_name}")
            module.add_arguments(p)
            p.set_defaults(handler=module.main)
    return parser


def chosen_command(argv: list[str]) -> Optional[str]:
    """The command argv names: its first word that is not an option (the top-level options take no
    value), if that is a command. None for none or an unknown word, which the parser then explains."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in {name for name, _, _ in COMMANDS} else None
    return None


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:  # the fast path: nothing else imported
        print(f"netprobe {__version__}")
        return EX_OK
    import logging

    from agent.cli.common import err

    command = chosen_command(argv)
    parser = build_parser(only=command or "")  # no command: names and help only, nothing imported
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
        return EX_INTERRUPTED
    except BrokenPipeError:  # e.g. `netprobe diagnose --json | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return EX_OK
    except SystemExit as exc:
        return int(exc.code or 0)
    except Exception as exc:  # the last guard: one line, never a traceback
        logging.getLogger("netprobe").debug("internal error", exc_info=True)
        err(f"internal error: {type(exc).__name__}: {exc} (run with -v for details)")
        return EX_SOFTWARE
