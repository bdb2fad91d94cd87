"""`netprobe incidents`: why desa were dark or degraded, and since when; `--watch` runs the engine."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import signal
import threading
import time
from typing import Any, Optional

from agent.cli.common import err, load_collector_config_or_exit, open_collector_store_or_exit
from agent.cli.exitcodes import EX_FAIL, EX_OK, EX_USAGE
from agent.cli.fleet import table

RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([hd])$")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", metavar="PATH", help="collector config (finds the database)")
    p.add_argument("--open", action="store_true", help="only incidents still open")
    p.add_argument("--kecamatan", metavar="K", help="only incidents touching this kecamatan")
    p.add_argument(
        "--since", metavar="DATE", help='since a date or time ("2026-05-28", "2026-05-28T08:00") or "24h", "7d"'
    )
    p.add_argument("--json", action="store_true", help="print them as JSON")
    p.add_argument("--lang", choices=("en", "id"), default="en", help="language of the text")
    p.add_argument("--watch", action="store_true", help="run the incident engine and the sender (without a collector)")


def parse_since(text: str, tz: dt.tzinfo, now: float) -> Optional[float]:
    """A date or date-time in the configured zone, or hours/days back; None if it is neither."""
    match = RELATIVE.match(text.strip())
    if match:
        return now - float(match.group(1)) * (3600.0 if match.group(2) == "h" else 86400.0)
    try:
        stamp = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=tz)).timestamp()


def main(args: argparse.Namespace) -> int:
    # The collector's modules stay out of a node's daemon, which builds the same parser.
    from agent.collector.incidents import store as istore
    from agent.collector.incidents.settings import load_zone
    from agent.collector.store import StoreDown

    cfg = load_collector_config_or_exit(args.config)
    if args.watch:
        return watch(cfg)
    tz = load_zone(cfg.incidents.timezone)
    now = time.time()
    since = None
    if args.since:
        since = parse_since(args.since, tz, now)
        if since is None:
            err(f"--since '{args.since}': use a date (2026-05-28), a date-time (2026-05-28T08:00), or 24h / 7d")
            return EX_USAGE
    store = open_collector_store_or_exit(cfg)
    try:
        found = istore.listing(store, args.open, since, args.kecamatan, members=False)
        counts = istore.outbox_counts(store) if found else {}
    except StoreDown as exc:
        err(f"cannot read the collector's database: {exc}")
        return EX_FAIL
    finally:
        store.close()
    if args.json:
        from agent.collector.incidents.messages import incident_dict

        print(
            json.dumps(
                {"incidents": [incident_dict(i) for i in found], "messages": counts}, ensure_ascii=False, indent=1
            )
        )
    else:
        print(as_text(found, counts, args.lang, tz, now))
    return EX_OK


def as_text(found: list[Any], counts: dict[str, int], lang: str, tz: dt.tzinfo, now: float) -> str:
    from agent.collector.incidents.messages import cause_text, duration, evidence_text, t, when

    if not found:
        return t("cli.none", lang)
    rows = [[t(f"cli.col.{c}", lang) for c in ("state", "since", "duration", "severity", "cause", "where", "evidence")]]
    for i in found:
        state = t("cli.open" if i.end is None else "cli.resolved", lang)
        lasted = duration((i.end if i.end is not None else now) - i.start, lang)
        where = (
            f"{i.kecamatan} / {i.desa} / {i.node}"
            if i.node
            else f"{i.group}: " + ", ".join(m.get("desa", "") for m in i.members)
        )
        rows.append(
            [state, when(i.start, tz), lasted, t(f"cli.{i.severity}", lang), cause_text(i, lang), where,
             evidence_text(i, lang)]
        )  # fmt: skip
    lines = table(rows)
    open_n = sum(1 for i in found if i.end is None)
    lines += ["", t("cli.summary", lang, open=open_n, total=len(found), **counts)]
    return "\n".join(lines)


def watch(cfg: Any) -> int:
    """The engine and the sender in this process, until SIGTERM or Ctrl-C (for a collector running elsewhere)."""
    from agent.collector.incidents.process import parent_gone
    from agent.collector.incidents.service import IncidentService

    logging.getLogger().setLevel(logging.INFO)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = IncidentService(cfg, stop).start()
    while not stop.wait(0.5):
        if parent_gone():  # started by `netprobe collect`, which is gone
            logging.getLogger(__name__).warning("incidents: the collector that started this engine is gone; stopping")
            stop.set()
    for thread in threads:
        thread.join(15)
    return EX_OK
