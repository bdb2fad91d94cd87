"""`netprobe check-config [PATH]`: exit 0 with a one-line summary, or 78 with every problem."""

from __future__ import annotations

import argparse

from agent.cli.common import add_config_arg, load_config_or_exit
from agent.cli.exitcodes import EX_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", help="config file")
    add_config_arg(p)


def main(args: argparse.Namespace) -> int:
    cfg = load_config_or_exit(args.path or args.config)
    print(f"{cfg.source}: OK ({len(cfg.targets)} targets, node '{cfg.node.resolved_id()}')")
    return EX_OK
