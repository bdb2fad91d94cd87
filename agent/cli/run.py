"""`netprobe run [-c PATH]`: the command line of the long-running agent (agent/daemon/daemon.py).

Kept apart so that building the CLI parser does not import asyncio, sqlite3 or
the daemon. Logs go to stderr, with syslog priority prefixes (`<6>...`) when
stderr is the journal (JOURNAL_STREAM set), so journald files levels right.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from agent.cli.common import add_config_arg, err, load_config_or_exit
from agent.cli.exitcodes import EX_CANTCREAT, EX_CONFIG

SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)


class JournalFormatter(logging.Formatter):
    """`<6>name: message`: journald reads the priority from the prefix; no timestamp (it adds its own)."""

    def format(self, record: logging.LogRecord) -> str:
        prio = SYSLOG_PRIORITY.get(record.levelno, 6)
        return "\n".join(f"<{prio}>{line}" for line in super().format(record).splitlines())


def setup_logging(verbose: bool) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [handler]
    for noisy in ("asyncio",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(args: argparse.Namespace) -> int:
    import asyncio
    import sqlite3

    from agent.daemon.daemon import Daemon  # not at import: building the parser must not load the daemon
    from agent.daemon.runlock import Busy, RunLock

    cfg = load_config_or_exit(args.config)
    if not cfg.node.id:
        err(
            f'node.id is not set in {cfg.source}: add [node] id = "..." (1-64 of a-z 0-9 . _ -); '
            "it names this node in MQTT topics and in every Reading"
        )
        return EX_CONFIG
    setup_logging(getattr(args, "verbose", False))
    # Held until the process ends: no second agent, and no `spool flush`, speaks as this node meanwhile.
    lock = RunLock(cfg.node.state_dir, "netprobe run")
    try:
        lock.acquire()
    except Busy as exc:
        err(
            f"{exc.holder or 'another netprobe'}{f' (pid {exc.pid})' if exc.pid else ''} is using "
            f"{cfg.node.state_dir} and this node's identity on the broker; not starting a second one"
        )
        return EX_CANTCREAT
    except OSError as exc:
        err(f"cannot use the state directory {cfg.node.state_dir}: {exc.strerror or exc} (node.state_dir)")
        return EX_CANTCREAT
    try:
        daemon = Daemon(cfg, args.config, sys.stdout)
    except OSError as exc:
        err(f"cannot use the state directory {cfg.node.state_dir}: {exc.strerror or exc} (node.state_dir)")
        return EX_CANTCREAT
    except sqlite3.Error as exc:
        err(f"cannot open the spool in {cfg.node.state_dir}: {exc} (move the damaged spool.sqlite3 aside)")
        return EX_CANTCREAT
    return asyncio.run(daemon.run())
