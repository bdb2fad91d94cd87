"""`netprobe collect`: run the collector until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from agent.cli.common import err
from agent.cli.exitcodes import EX_CONFIG
from agent.schema import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help="collector config (default: $NETPROBE_COLLECTOR_CONFIG or /etc/netprobe/collector.toml)",
    )


def main(args: argparse.Namespace) -> int:
    # The collector runs on a server; a node's daemon, which builds the same parser, never loads it.
    from agent.collector.service import Collector
    from agent.collector.settings import load_collector_config, read_password

    try:
        cfg = load_collector_config(args.config)
        read_password(cfg.broker.password_file)  # fail now, not on the first connect
    except ConfigError as exc:
        for line in exc.summary().splitlines():
            err(line)
        return EX_CONFIG
    if not args.verbose:  # a daemon: say what it is doing, without debug noise
        logging.getLogger("agent.collector").setLevel(logging.INFO)
        logging.getLogger().setLevel(logging.INFO)
    collector = Collector(cfg, config_path=args.config, verbose=args.verbose)

    def stop(signum: int, _frame: Any) -> None:
        logging.getLogger(__name__).info("signal %d: stopping", signum)
        collector.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = collector.run()
    sys.stderr.flush()
    return code
