"""`netprobe spool status` and `netprobe spool flush`: look into the spool, or empty it to the broker now."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time

from agent.cli.common import add_config_arg, err, load_config_or_exit
from agent.cli.exitcodes import EX_CONFIG, EX_FAIL, EX_OK, EX_USAGE
from agent.config import Config
from agent.publish.mqtt import Publisher, PublisherSettings
from agent.publish.spool import Spool, spool_path
from agent.runner import identity_of


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="spool_action", metavar="ACTION")
    s = sub.add_parser("status", help="readings waiting, oldest, dropped, last sequence numbers")
    add_config_arg(s)
    s.add_argument("--json", action="store_true", help="print the status as JSON")
    f = sub.add_parser("flush", help="deliver every spooled reading to the broker now, then exit")
    add_config_arg(f)
    f.add_argument("--timeout", type=float, default=120.0, help="seconds to keep trying (default 120)")


def main(args: argparse.Namespace) -> int:
    if not args.spool_action:
        err("spool: choose an action: status or flush")
        return EX_USAGE
    cfg = load_config_or_exit(args.config)
    path = spool_path(cfg.node.state_dir)
    if args.spool_action == "status" and not os.path.exists(path):
        print(json.dumps({"path": path, "rows": 0, "bytes": 0, "dropped": 0}) if args.json else f"no spool at {path}")
        return EX_OK
    try:
        spool = Spool(path, cfg.spool.max_rows, int(cfg.spool.max_mb * 1e6))
    except (OSError, sqlite3.Error) as exc:
        err(f"cannot open the spool {path}: {exc}")
        return EX_FAIL
    try:
        if args.spool_action == "status":
            return status(spool, args.json)
        return flush(cfg, spool, args.timeout)
    finally:
        spool.close()


def status(spool: Spool, as_json: bool) -> int:
    stats, oldest = spool.stats(), spool.oldest()
    last_seq = spool.last_seqs()
    report = {
        "path": spool.path,
        "rows": stats.rows,
        "bytes": stats.bytes,
        "dropped": stats.dropped,
        "oldest_ts": oldest.ts if oldest else None,
        "last_seq": last_seq,
    }
    if as_json:
        print(json.dumps(report))
        return EX_OK
    print(f"spool {spool.path}")
    print(f"  waiting:  {stats.rows} readings ({stats.bytes / 1000:.1f} kB)")
    if oldest:
        print(f"  oldest:   {oldest.ts} ({oldest.measurement} {oldest.target}, seq {oldest.seq})")
    print(f"  dropped:  {stats.dropped} (oldest readings dropped because the spool was full)")
    for node, seq in last_seq.items():
        print(f"  last seq: {node} = {seq}")
    return EX_OK


def flush(cfg: Config, spool: Spool, timeout: float) -> int:
    mqtt = cfg.mqtt
    if not mqtt.broker:
        err("no broker configured (mqtt.broker): nothing to flush to")
        return EX_CONFIG
    before = spool.stats().rows
    ident = identity_of(cfg)
    # Its own client id, so a running daemon's session is not taken over; no status announcements.
    settings = PublisherSettings(
        mqtt=mqtt, node=ident.node, site=ident.site, announce=False, client_id=f"{ident.node}-flush"
    )
    started = time.monotonic()
    done = Publisher(settings, spool.path, spool.max_rows, spool.max_bytes).drain(timeout)
    left = spool.stats().rows
    print(f"delivered {max(0, before - left)} readings in {time.monotonic() - started:.1f} s; {left} left")
    if not done:
        err(f"could not deliver everything to {mqtt.broker} within {timeout:g} s (see the log above)")
        return EX_FAIL
    return EX_OK
