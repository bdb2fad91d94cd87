"""What the command modules share: the error line, the parser that exits 64, config loading."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, NoReturn, Optional

from agent.cli.exitcodes import EX_CONFIG, EX_FAIL, EX_USAGE
from agent.config import Config, ConfigError, load_config, parse_config

if TYPE_CHECKING:
    from agent.collector.settings import CollectorConfig
    from agent.collector.store import Store


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


# The collector's commands share these two steps. Its modules load only when one of them runs:
# a node's daemon builds the same parser and must not carry the collector.
def load_collector_config_or_exit(path: Optional[str]) -> CollectorConfig:
    from agent.collector.settings import load_collector_config

    try:
        return load_collector_config(path)
    except ConfigError as exc:
        for line in exc.summary().splitlines():
            err(line)
        raise SystemExit(EX_CONFIG) from None


def open_collector_store_or_exit(cfg: CollectorConfig) -> Store:
    """The collector's database, read-only; one line and exit 1 when it cannot be read."""
    from agent.collector.store import StoreDown, open_store

    try:
        return open_store(cfg.store.dsn, cfg.store.path, cfg.store.pg_schema, readonly=True)
    except StoreDown as exc:
        err(f"cannot read the collector's database: {exc}")
        raise SystemExit(EX_FAIL) from None
