"""`netprobe spool status` and `netprobe spool flush`: look into the spool, or empty it to the broker now."""

from __future__ import annotations

import argparse
import json
import os
import time

EX_OK, EX_FAIL, EX_CONFIG = 0, 1, 78


def add_arguments(p: argparse.ArgumentParser) -> None:
    from agent.cli import add_config_arg

    sub = p.add_subparsers(dest="spool_action", metavar="ACTION")
    s = sub.add_parser("status", help="readings waiting, oldest, dropped, last sequence numbers")
    add_config_arg(s)
    s.add_argument("--json", action="store_true", help="print the status as JSON")
    f = sub.add_parser("flush", help="deliver every spooled reading to the broker now, then exit")
    add_config_arg(f)
    f.add_argument("--timeout", type=float, default=120.0, help="seconds to keep trying (default 120)")


def main(args: argparse.Namespace) -> int:
    import sqlite3

    from agent.cli import err, load_config_or_exit
    from agent.publish.spool import Spool, spool_path

    if not getattr(args, "spool_action", None):
        err("spool: choose an action: status or flush")
        return 64
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


def status(spool: object, as_json: bool) -> int:
    from agent.publish.spool import Spool

    assert isinstance(spool, Spool)
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


def flush(cfg: object, spool: object, timeout: float) -> int:
    from agent.cli import err
    from agent.publish.mqtt import Publisher, PublisherSettings
    from agent.publish.spool import Spool
    from agent.runner import identity_of

    assert isinstance(spool, Spool)
    mqtt = cfg.mqtt  # type: ignore[attr-defined]
    if not mqtt.broker:
        err("no broker configured (mqtt.broker): nothing to flush to")
        return EX_CONFIG
    before = spool.stats().rows
    ident = identity_of(cfg)  # type: ignore[arg-type]
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
