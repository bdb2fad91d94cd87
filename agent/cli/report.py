"""`netprobe report`: a month's availability per node, desa, kecamatan and provider (CSV, HTML or JSON)."""

from __future__ import annotations

import argparse
import sys
import time

from agent.cli.common import err, load_collector_config_or_exit, open_collector_store_or_exit
from agent.cli.exitcodes import EX_FAIL, EX_OK, EX_USAGE


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", metavar="PATH", help="collector config (finds the database, [sla] and [web])")
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="the calendar month, in [web] timezone")
    p.add_argument("--format", choices=("csv", "html", "json"), default="csv", help="csv (default), html (A4) or json")
    p.add_argument("--lang", choices=("en", "id"), help="language of the HTML (default: [web] lang)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")


def main(args: argparse.Namespace) -> int:
    # The collector's modules stay out of a node's daemon, which builds the same parser.
    from agent.collector import report
    from agent.collector.store import StoreDown
    from agent.collector.web.rollup import Rollup

    if not report.MONTH_RE.match(args.month):
        err(f"bad --month '{args.month}': expected YYYY-MM, e.g. 2026-11")
        return EX_USAGE
    cfg = load_collector_config_or_exit(args.config)
    store = open_collector_store_or_exit(cfg)
    try:
        now = time.time()
        Rollup(store, cfg.sla.evidence_s, cfg.web.history_days).catch_up(now)  # what arrived since `netprobe web` ran
        rep = report.build_report(store, cfg, args.month, now)
    except StoreDown as exc:
        err(f"cannot read the collector's database: {exc}")
        return EX_FAIL
    except ValueError as exc:
        err(str(exc))
        return EX_USAGE
    finally:
        store.close()
    lang = args.lang or cfg.web.lang
    out = {"csv": report.to_csv, "json": report.to_json}.get(args.format, lambda r: report.render_html(r, lang))(rep)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8", newline="") as f:
                f.write(out)
        except OSError as exc:
            err(f"cannot write {args.output}: {exc.strerror}")
            return EX_FAIL
    else:
        sys.stdout.write(out)
    return EX_OK
