"""`netprobe web`: the regency's live view and SLA pages over the collector's database."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from agent.cli.common import err, load_collector_config_or_exit
from agent.cli.exitcodes import EX_CONFIG, EX_FAIL, EX_NOPERM, EX_OK, EX_USAGE


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help="collector config (default: $NETPROBE_COLLECTOR_CONFIG or /etc/netprobe/collector.toml)",
    )
    p.add_argument("--listen", metavar="HOST:PORT", help="where to listen (default: [web] listen, 127.0.0.1:8080)")


def main(args: argparse.Namespace) -> int:
    # The collector's modules stay out of a node's daemon, which builds the same parser.
    from agent.collector.store import StoreDown, open_store
    from agent.collector.web.server import App, Auth, make_server
    from agent.collector.web.settings import listen_address

    cfg = load_collector_config_or_exit(args.config)
    try:
        host, port = listen_address(args.listen or cfg.web.listen)
    except ValueError as exc:
        err(str(exc))
        return EX_USAGE
    try:
        auth = Auth.from_config(cfg)
    except OSError as exc:
        err(f"cannot read the web's credentials: {exc}")
        return EX_CONFIG

    def store() -> Any:
        return open_store(cfg.store.dsn, cfg.store.path, cfg.store.pg_schema, readonly=True,
                          busy_timeout_s=cfg.store.busy_timeout_s)  # fmt: skip

    try:
        store().close()  # fail now, with the reason, if the database cannot be opened
    except StoreDown as exc:
        err(f"cannot read the collector's database: {exc}")
        return EX_FAIL
    if not args.verbose:
        logging.getLogger().setLevel(logging.INFO)
    app = App(cfg, store, auth)
    try:
        server = make_server(app, host, port)
    except PermissionError:
        err(f"no permission to listen on {host}:{port} (ports below 1024 need root)")
        return EX_NOPERM
    except OSError as exc:
        err(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        return EX_FAIL
    app.start_background()
    bound = server.server_address
    print(f"netprobe web listening on http://{host}:{bound[1]}/", flush=True)

    def stop(signum: int, _frame: Any) -> None:
        logging.getLogger(__name__).info("signal %d: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        app.close()
    return EX_OK
