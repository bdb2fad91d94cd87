"""What the command modules share: the error line, the parser that exits 64, config loading."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Optional

from agent.cli.exitcodes import EX_CONFIG, EX_USAGE
from agent.config import Config, ConfigError, load_config, parse_config


def err(message: str) -> None:
    """One line on stderr: bad input never gets a traceback."""
    print(f"netprobe: {message}", file=sys.stderr)


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c", "--config", metavar="PATH", help="config file (default: $NETPROBE_CONFIG or /etc/netprobe/agent.toml)"
    )


class Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage; 2 means "down" here, so usage errors exit 64."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        err(message)
        raise SystemExit(EX_USAGE)


def load_config_or_exit(path: Optional[str]) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.summary().splitlines():
            err(line)
        raise SystemExit(EX_CONFIG) from None


def load_config_quietly() -> Config:
    """The node's identity for an ad-hoc probe: its config if valid, else the defaults."""
    try:
        return load_config()
    except ConfigError:
        return parse_config({})
