"""`netprobe spool status` and `netprobe spool flush`: look into the spool, or empty it to the broker now."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import time

from agent.cli.common import add_config_arg, err, load_config_or_exit
from agent.cli.exitcodes import EX_CONFIG, EX_FAIL, EX_OK, EX_USAGE
from agent.config import Config
from agent.publish import recover
from agent.publish.spool import NOT_CONFIRMED, Spool, delivery_state, rebuild, spool_path
from agent.reading import topics
from agent.runner import identity_of


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="spool_action", metavar="ACTION")
    s = sub.add_parser("status", help="readings waiting, sent, confirmed, oldest, dropped, last sequence numbers")
    add_config_arg(s)
    s.add_argument("--json", action="store_true", help="print the status as JSON")
    f = sub.add_parser("flush", help="deliver every spooled reading now and wait for its confirmation, then exit")
    add_config_arg(f)
    f.add_argument("--timeout", type=float, default=120.0, help="seconds to keep trying (default 120)")


def main(args: argparse.Namespace) -> int:
    if not args.spool_action:
        err("spool: choose an action: status or flush")
        return EX_USAGE
    cfg = load_config_or_exit(args.config)
    path = spool_path(cfg.node.state_dir)
    if args.spool_action == "status" and not os.path.exists(path):
        empty = {"path": path, "rows": 0, "bytes": 0, "dropped": 0, "sent": 0, "waiting": 0, "confirmed": 0}
        print(json.dumps(empty) if args.json else f"no spool at {path}")
        return EX_OK
    flushing = args.spool_action == "flush" and bool(cfg.mqtt.broker)  # (no broker: flush() says so)
    if flushing and not claim(cfg.node.state_dir):
        return EX_FAIL
    limits = (cfg.spool.max_rows, int(cfg.spool.max_mb * 1e6))
    try:
        try:
            spool = Spool(path, *limits, check=flushing)
        except sqlite3.DatabaseError as exc:
            if not (flushing and recover.is_damage(exc)):  # a flush holds the lock: it may rebuild
                raise
            err(f"the spool {path} is damaged ({exc}): rebuilding it")
            spool = rebuild(path, *limits)[0]
    except (OSError, sqlite3.Error) as exc:
        hint = " (`netprobe run` rebuilds a damaged spool when it starts)" if recover.is_damage(exc) else ""
        err(f"cannot open the spool {path}: {exc}{hint}")
        return EX_FAIL
    try:
        if args.spool_action == "status":
            return status(spool, args.json, cfg)
        return flush(cfg, spool, args.timeout)
    except sqlite3.DatabaseError as exc:
        if not recover.is_damage(exc):
            raise
        err(f"the spool {path} is damaged ({exc}): `netprobe run` rebuilds it when it next starts, or as it meets it")
        return EX_FAIL
    finally:
        spool.close()


def claim(state_dir: str) -> bool:
    """Take the run lock for the flush, or say who holds it and return False. Beside a running agent a
    flush would connect as the same node: on a broker that makes the username the client id
    (packaging/mosquitto/netprobe.conf) each connection would close the other's session."""
    from agent.daemon.runlock import Busy, RunLock  # the daemon's modules load only where used

    try:
        RunLock(state_dir, "netprobe spool flush").acquire()  # held until this process ends
    except Busy as exc:
        pid = f" (pid {exc.pid})" if exc.pid else ""
        if exc.holder == "netprobe spool flush":
            err(f"another netprobe spool flush{pid} is already flushing this spool")
        else:
            err(
                f"{exc.holder or 'netprobe run'}{pid} is running and delivers the spool itself; "
                "`netprobe spool status` shows how far it has got. A flush beside it would log in as the same "
                "node and cut off its session. To flush by hand, stop it first: systemctl stop netprobe-agent, "
                "netprobe spool flush, systemctl start netprobe-agent"
            )
        return False
    except OSError as exc:
        err(f"cannot use the state directory {state_dir}: {exc.strerror or exc} (node.state_dir)")
        return False
    return True


def status(spool: Spool, as_json: bool, cfg: Config) -> int:
    """What waits, what the broker took and waits for the collector's confirmation, and for how long."""
    stats, oldest, now, last_seq = spool.stats(), spool.oldest(), time.time(), spool.last_seqs()
    mqtt = cfg.mqtt
    delivery = delivery_state(mqtt.confirm, mqtt.confirm_timeout, stats, now) if mqtt.broker else "no_broker"
    report = {
        "path": spool.path,
        "rows": stats.rows,
        "bytes": stats.bytes,
        "waiting": stats.waiting,
        "sent": stats.sent,
        "confirmed": stats.confirmed,
        "dropped": stats.dropped,
        "oldest_ts": oldest.ts if oldest else None,
        "oldest_age_s": round(max(0.0, now - iso_epoch(oldest.ts))) if oldest else None,
        "unconfirmed_s": round(stats.unconfirmed_s(now)),
        "confirm": mqtt.confirm,
        "confirm_timeout": mqtt.confirm_timeout,
        "delivery": delivery,
        "last_seq": last_seq,
    }
    if as_json:
        print(json.dumps(report))
        return EX_OK
    print(f"spool {spool.path}")
    print(f"  waiting:  {stats.waiting} readings not yet taken by the broker ({stats.bytes / 1000:.1f} kB in all)")
    by = "the collector's" if mqtt.confirm == "collector" else "the broker's"
    print(f"  sent:     {stats.sent} readings waiting for {by} confirmation", end="")
    print(f" (oldest sent {stats.unconfirmed_s(now):.0f} s ago)" if stats.sent else "")
    print(f"  confirmed: {stats.confirmed} readings, deleted from the spool")
    if delivery == NOT_CONFIRMED:
        print(
            f"  NOT CONFIRMED: a sent reading has waited longer than mqtt.confirm_timeout ({mqtt.confirm_timeout:g} s): "
            "check that `netprobe collect` runs, the broker's ACL for this node (its topics, and reading "
            f"{topics.ack_topic(identity_of(cfg).node, mqtt.ack_topic)}), and mqtt.topic"
        )
    if oldest:
        age = report["oldest_age_s"]
        print(f"  oldest:   {oldest.ts} ({age} s ago; {oldest.measurement} {oldest.target}, seq {oldest.seq})")
    print(f"  dropped:  {stats.dropped} (oldest unconfirmed readings dropped because the spool was full)")
    for node, seq in last_seq.items():
        print(f"  last seq: {node} = {seq}")
    return EX_OK


def iso_epoch(ts: str) -> float:
    try:
        return dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        return time.time()


def flush(cfg: Config, spool: Spool, timeout: float) -> int:
    # paho (with http, email and dnspython's resolver behind it) loads only for a flush: every
    # other command builds this module's parser, and `diagnose` or the daemon without a broker
    # must not pay for it.
    from agent.publish.mqtt import Publisher, PublisherSettings

    mqtt = cfg.mqtt
    if not mqtt.broker:
        err("no broker configured (mqtt.broker): nothing to flush to")
        return EX_CONFIG
    before = spool.stats().rows
    # The collector's acks come on the node's own topic, which the flush client reads as well.
    ident = identity_of(cfg)
    # Its own client id, so a running daemon's session is not taken over; no status announcements.
    settings = PublisherSettings(
        mqtt=mqtt, node=ident.node, site=ident.site, announce=False, client_id=f"{ident.node}-flush"
    )
    started = time.monotonic()
    done = Publisher(settings, spool.path, spool.max_rows, spool.max_bytes).drain(timeout)
    left = spool.stats().rows
    stored = " (stored by the collector)" if mqtt.confirm == "collector" else ""
    print(f"delivered {max(0, before - left)} readings{stored} in {time.monotonic() - started:.1f} s; {left} left")
    if not done:
        err(f"could not deliver everything to {mqtt.broker} within {timeout:g} s (see the log above)")
        return EX_FAIL
    return EX_OK
