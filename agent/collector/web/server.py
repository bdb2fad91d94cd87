"""`netprobe web`: a read-only HTTP service over the collector's database, on the standard library.

Why `http.server` and no framework: every route is a GET rendered from a few
queries, the audience is one regency office, and the Debian package stays
free of a web stack. `ThreadingHTTPServer` serves requests in threads, at most
`[web] max_clients` at once (more get 503); each takes a store connection from
a small pool (a connection is not shared between threads).

`App.handle` is the whole policy, with no socket: authentication, bounded
paths and query parameters, routing, security headers, 400/404/405/503
instead of tracebacks. A background thread keeps the rollup (history) current
and the month's availability per node ready for the overview.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import gzip
import hmac
import json
import logging
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl, unquote

from agent.collector import report as month_report
from agent.collector import sla
from agent.collector.settings import CollectorConfig
from agent.collector.store import Store, StoreDown
from agent.collector.web import api, incidents, metrics, pages, rollup, static, views
from agent.collector.web.map import load_boundary, render_map
from agent.collector.web.settings import zone
from agent.i18n import text
from agent.net.secrets import read_secret_file
from agent.reading.topics import NODE_ID_RE

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; img-src 'self'; style-src 'self'; report-uri /csp-report"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
HTML = "text/html; charset=utf-8"
JSON = "application/json"
MAX_PATH = 512
MAX_QUERY = 1024
MAX_PARAMS = 8
MAX_BODY = 16 * 1024
MAX_NAME = 128  # a kecamatan's name (the contract allows 128 characters)
PARAMS = {"lang": ("en", "id"), "range": tuple(views.RANGES), "format": ("json", "csv", "html"), "month": None}


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query as sent
    headers: dict[str, str]  # names lower-case
    body: bytes = b""


@dataclasses.dataclass
class Response:
    status: int
    body: bytes
    content_type: str = HTML
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Auth:
    """Basic auth (username + password file) and/or a bearer token; neither configured: open."""

    def __init__(self, username: str = "", password: str = "", token: str = "") -> None:
        self.username, self.password, self.token = username, password, token

    @property
    def required(self) -> bool:
        return bool((self.username and self.password) or self.token)

    def allows(self, header: str) -> bool:
        if not self.required:
            return True
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer" and self.token:
            return hmac.compare_digest(value.strip().encode(), self.token.encode())
        if scheme.lower() == "basic" and self.username and self.password:
            try:
                user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return False
            ok_user = hmac.compare_digest(user.encode(), self.username.encode())
            ok_pass = hmac.compare_digest(password.encode(), self.password.encode())
            return bool(sep) and ok_user and ok_pass
        return False

    @classmethod
    def from_config(cls, cfg: CollectorConfig) -> Auth:
        """Secrets from their files (never from collector.toml itself); an unreadable file is an OSError."""
        w = cfg.web
        password = read_secret_file(w.password_file) if w.password_file else ""
        token = read_secret_file(w.token_file) if w.token_file else ""
        if w.username and not password:
            raise OSError(f"web.username is set but web.password_file ({w.password_file or 'unset'}) gives no password")
        return cls(w.username, password, token)


class StorePool:
    """A few store connections, one per request at a time; made on demand, kept for reuse."""

    def __init__(self, factory: Callable[[], Store], size: int) -> None:
        self.factory = factory
        self.free: queue.LifoQueue[Store] = queue.LifoQueue()
        self.slots = threading.BoundedSemaphore(size)
        self.all: list[Store] = []
        self.lock = threading.Lock()

    @contextmanager
    def get(self) -> Iterator[Store]:
        if not self.slots.acquire(timeout=30):
            raise StoreDown("no free database connection")
        try:
            try:
                store = self.free.get_nowait()
            except queue.Empty:
                store = self.factory()
                with self.lock:
                    self.all.append(store)
            try:
                yield store
            finally:
                self.free.put(store)
        finally:
            self.slots.release()

    def close(self) -> None:
        with self.lock:
            for store in self.all:
                try:
                    store.close()
                except Exception:  # closing a broken connection: nothing left to do
                    log.debug("closing a store failed", exc_info=True)
            self.all.clear()


@dataclasses.dataclass
class MonthCache:
    month: str = ""
    nodes: Optional[dict[str, sla.Tally]] = None
    kecamatan: Optional[dict[str, sla.Tally]] = None
    computed: float = 0.0


class App:
    """The web service's logic: a Request in, a Response out."""

    def __init__(
        self,
        cfg: CollectorConfig,
        store_factory: Callable[[], Store],
        auth: Optional[Auth] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.tz = zone(cfg.web.timezone)
        self.clock = clock
        self.auth = auth or Auth()
        self.pool = StorePool(store_factory, cfg.web.max_clients)
        self.boundary = load_boundary(cfg.web.boundary_file)
        self.store_factory = store_factory
        self.rollup: Optional[rollup.Rollup] = None
        self.history_error = ""
        self.month = MonthCache()
        self.reports: dict[tuple[str, float], month_report.Report] = {}
        self.csp_count = 0
        self.csp_reports: deque[dict[str, Any]] = deque(maxlen=50)
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread: Optional[threading.Thread] = None

    # -- the background: history ------------------------------------------------
    def start_background(self) -> None:
        self.thread = threading.Thread(target=self._background, name="netprobe-web-rollup", daemon=True)
        self.thread.start()

    def _background(self) -> None:
        store: Optional[Store] = None
        while not self.stop.is_set():
            try:
                if store is None:
                    store = self.store_factory()
                    self.rollup = rollup.Rollup(store, self.cfg.sla.evidence_s, self.cfg.web.history_days)
                self.refresh(store)
                self.history_error = ""
            except StoreDown as exc:
                self.history_error = "database"
                log.warning("history not updated: %s", exc)
            except Exception:  # a bug here must not stop the pages; they say history is unavailable
                self.history_error = "internal"
                log.exception("history not updated")
            self.ready.set()
            self.stop.wait(self.cfg.web.refresh_s)
        if store is not None:
            store.close()

    def refresh(self, store: Store) -> None:
        """One round: roll up new readings, then this month's availability per node and kecamatan."""
        assert self.rollup is not None
        now = self.clock()
        self.rollup.catch_up(now)
        month = month_report.current_month(now, self.tz)
        rep = month_report.build_report(store, self.cfg, month, now, figures=False)
        self.month = MonthCache(
            month,
            {x.name: x.tally for x in rep.lines["node"]},
            {x.name: x.tally for x in rep.lines["kecamatan"]},
            now,
        )
        self.reports.clear()

    def history_ready(self) -> bool:
        return self.rollup is not None and self.rollup.progress.last_run is not None and not self.history_error

    def history_note(self, lang: str) -> str:
        if self.history_error:
            return text("web.history.error", lang)
        if self.rollup is None or self.rollup.progress.last_run is None:
            p = self.rollup.progress if self.rollup else None
            done, total = (p.nodes_done, p.nodes_total) if p else (0, 0)
            return text("web.history.building", lang, done=done, total=total)
        return ""

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
        self.pool.close()

    # -- requests ----------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        lang = self.cfg.web.lang
        try:
            path, params = self._parse(req.target)
            lang = params.get("lang", lang)
            if req.method == "POST" and path == "/csp-report":
                return self._csp_report(req)
            if not self.auth.allows(req.headers.get("authorization", "")):
                headers = {"WWW-Authenticate": 'Basic realm="netprobe", charset="UTF-8"'} if self.auth.username else {}
                return self._error(401, text("web.error.401", lang), lang, path, params, headers)
            if req.method not in ("GET", "HEAD"):
                return self._error(405, text("web.error.405", lang), lang, path, params, {"Allow": "GET, HEAD"})
            if path in static.FILES:
                kind, body = static.FILES[path]
                return Response(200, body, kind, {"Cache-Control": "private, max-age=3600"})
            with self.pool.get() as store:
                return self._route(store, path, params, lang)
        except BadRequest as exc:
            return self._error(exc.status, exc.message, lang if lang in ("en", "id") else "en", "/", {})
        except StoreDown as exc:
            log.warning("database unavailable: %s", exc)
            return self._error(503, text("web.error.503", lang), lang, "/", {}, {"Retry-After": "30"})
        except Exception:
            log.exception("internal error serving %s", req.target[:200])
            return self._error(500, text("web.error.500", lang), lang, "/", {})

    def _parse(self, target: str) -> tuple[str, dict[str, str]]:
        raw_path, _, query = target.partition("?")
        if len(raw_path) > MAX_PATH or not raw_path.startswith("/"):
            raise BadRequest(414 if len(raw_path) > MAX_PATH else 400, "bad path")
        if len(query) > MAX_QUERY:
            raise BadRequest(414, "query too long")
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_PARAMS)
        except ValueError:
            raise BadRequest(400, "too many query parameters") from None
        params: dict[str, str] = {}
        for key, value in pairs:
            if key not in PARAMS:
                continue  # unknown parameters are ignored, as a browser's extras should be
            if key in params:
                raise BadRequest(400, f"'{key}' given twice")
            allowed = PARAMS[key]
            if allowed is not None and value not in allowed:
                raise BadRequest(400, f"bad {key}: expected one of {', '.join(allowed)}")
            if key == "month" and not month_report.MONTH_RE.match(value):
                raise BadRequest(400, "bad month: expected YYYY-MM")
            params[key] = value
        return raw_path, params

    def _route(self, store: Store, path: str, params: dict[str, str], lang: str) -> Response:
        now = self.clock()
        try:
            parts = [unquote(p, errors="strict") for p in path.split("/")[1:]]
        except UnicodeDecodeError:
            raise BadRequest(400, "bad path encoding") from None
        head = parts[0] if parts else ""
        if path == "/":
            return self._overview(store, now, lang, path, params)
        if path == "/sla":
            return self._sla_page(store, now, lang, path, params)
        if path == "/metrics":
            fleet = views.snapshot(store, self.cfg, now)
            done = self.rollup.progress.nodes_done if self.rollup and self.rollup.progress.last_run else None
            return Response(200, metrics.render(fleet, self.csp_count, done).encode(), metrics.CONTENT_TYPE)
        if path == "/healthz":
            progress = dataclasses.asdict(self.rollup.progress) if self.rollup else None
            body = {
                "ok": True,
                "history_ready": self.history_ready(),
                "rollup": progress,
                "csp_violations": self.csp_count,
            }
            return Response(200, api.dumps(body), JSON)
        if head == "kecamatan" and len(parts) == 2 and 0 < len(parts[1]) <= MAX_NAME:
            return self._kecamatan(store, parts[1], now, lang, path, params, as_json=False)
        if head == "node" and len(parts) == 2 and NODE_ID_RE.match(parts[1]):
            return self._node(store, parts[1], now, lang, path, params, as_json=False)
        if head == "api" and len(parts) >= 2:
            return self._api(store, parts[1:], now, lang, path, params)
        return self._error(404, text("web.error.404", lang), lang, path, params)

    def _ctx(self, lang: str, path: str, params: dict[str, str], now: float) -> pages.Ctx:
        kept = {k: v for k, v in params.items() if k != "lang"}
        return pages.Ctx(lang, path, kept, self.tz, views.kabupaten(self.cfg), now, self.history_note(lang))

    def _page(self, html: str) -> Response:
        return Response(200, html.encode(), HTML)

    def _map(self, fleet: views.Fleet, lang: str, boundary: bool = True) -> str:
        return render_map(fleet.views, lang, self.boundary if boundary else ())

    def _overview(self, store: Store, now: float, lang: str, path: str, params: dict[str, str]) -> Response:
        fleet = views.snapshot(store, self.cfg, now)
        open_items = incidents.open_incidents(store)
        ctx = self._ctx(lang, path, params, now)
        return self._page(pages.overview(ctx, fleet, self.month.kecamatan, open_items, self._map(fleet, lang)))

    def _kecamatan(
        self, store: Store, name: str, now: float, lang: str, path: str, params: dict[str, str], as_json: bool
    ) -> Response:
        fleet = views.snapshot(store, self.cfg, now, kecamatan=name, with_sites=as_json)
        if not fleet.views:
            return self._error(
                404, text("web.error.no_kecamatan", lang, kecamatan=name), lang, path, params, as_json=as_json
            )
        if as_json:
            data = api.overview(fleet, self.month.nodes, self.month.kecamatan, None)
            return Response(200, api.dumps(data), JSON)
        ctx = self._ctx(lang, path, params, now)
        page = pages.kecamatan_page(
            ctx, fleet.views[0].kecamatan, fleet, self.month.nodes, self._map(fleet, lang, False)
        )
        return self._page(page)

    def _node(
        self, store: Store, node: str, now: float, lang: str, path: str, params: dict[str, str], as_json: bool
    ) -> Response:
        detail = views.node_detail(store, self.cfg, node, params.get("range", "24h"), now, self.history_ready())
        if detail is None:
            return self._error(404, text("web.error.no_node", lang, node=node), lang, path, params, as_json=as_json)
        if as_json:
            return Response(200, api.dumps(api.node(detail)), JSON)
        return self._page(pages.node_page(self._ctx(lang, path, params, now), detail))

    def _report(self, store: Store, month: str, now: float) -> month_report.Report:
        key = (month, self.month.computed)
        found = self.reports.get(key)
        if found is None:
            found = month_report.build_report(store, self.cfg, month, now)
            if len(self.reports) > 24:
                self.reports.clear()
            self.reports[key] = found
        return found

    def _sla_page(self, store: Store, now: float, lang: str, path: str, params: dict[str, str]) -> Response:
        month = params.get("month") or month_report.current_month(now, self.tz)
        report, problem = None, ""
        if not self.history_ready():
            problem = self.history_note(lang) or text("web.history.building", lang, done=0, total=0)
        else:
            try:
                report = self._report(store, month, now)
            except ValueError:
                problem = text("web.sla.not_begun", lang, month=month)
        ctx = self._ctx(lang, path, params, now)
        return self._page(pages.sla_page(ctx, month, report, problem, _neighbours(month)))

    def _api(
        self, store: Store, parts: list[str], now: float, lang: str, path: str, params: dict[str, str]
    ) -> Response:
        what = parts[0]
        if what == "overview" and len(parts) == 1:
            fleet = views.snapshot(store, self.cfg, now, with_sites=True)
            data = api.overview(fleet, self.month.nodes, self.month.kecamatan, incidents.open_incidents(store))
            return Response(200, api.dumps(data), JSON)
        if what == "kecamatan" and len(parts) == 2 and 0 < len(parts[1]) <= MAX_NAME:
            return self._kecamatan(store, parts[1], now, lang, path, params, as_json=True)
        if what == "node" and len(parts) == 2 and NODE_ID_RE.match(parts[1]):
            return self._node(store, parts[1], now, lang, path, params, as_json=True)
        if what == "sla" and len(parts) == 1:
            if not self.history_ready():
                return self._error(
                    503, self.history_note(lang), lang, path, params, {"Retry-After": "60"}, as_json=True
                )
            month = params.get("month") or month_report.current_month(now, self.tz)
            try:
                rep = self._report(store, month, now)
            except ValueError as exc:
                return self._error(400, str(exc), lang, path, params, as_json=True)
            fmt = params.get("format", "json")
            if fmt == "csv":
                name = f"netprobe-sla-{month}.csv"
                return Response(200, month_report.to_csv(rep).encode(), "text/csv; charset=utf-8",
                                {"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
            if fmt == "html":
                return Response(200, month_report.render_html(rep, lang, stylesheet="/static/web.css").encode(), HTML)
            return Response(200, month_report.to_json(rep).encode(), JSON)
        return self._error(404, text("web.error.404", lang), lang, path, params, as_json=True)

    def _csp_report(self, req: Request) -> Response:
        """Browsers report what the policy blocked here: counted, logged, kept (the last 50) for /healthz and tests."""
        if len(req.body) > MAX_BODY:
            return Response(413, b"", "text/plain")
        try:
            data = json.loads(req.body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError):
            data = {"unparsed": True}
        report = data.get("csp-report", data) if isinstance(data, dict) else {}
        keep = {k: str(v)[:300] for k, v in (report.items() if isinstance(report, dict) else []) if isinstance(k, str)}
        self.csp_count += 1
        self.csp_reports.append(keep)
        log.warning("CSP violation: %s", json.dumps(keep)[:500])
        return Response(204, b"", "text/plain")

    def _error(
        self,
        status: int,
        message: str,
        lang: str,
        path: str,
        params: dict[str, str],
        headers: Optional[dict[str, str]] = None,
        as_json: bool = False,
    ) -> Response:
        if as_json or path.startswith("/api/") or path == "/metrics":
            return Response(status, api.dumps({"error": message, "status": status}), JSON, dict(headers or {}))
        ctx = self._ctx(lang if lang in ("en", "id") else "en", "/", {}, self.clock())
        return Response(status, pages.error_page(ctx, status, message).encode(), HTML, dict(headers or {}))


def _neighbours(month: str) -> tuple[str, str]:
    year, mon = int(month[:4]), int(month[5:])
    prev = f"{year - (mon == 1)}-{(mon - 2) % 12 + 1:02d}"
    nxt = f"{year + (mon == 12)}-{mon % 12 + 1:02d}"
    return prev, nxt


# -- the HTTP side ----------------------------------------------------------------------------
def compressible(resp: Response, accept: str) -> bool:
    return (
        "gzip" in accept.lower()
        and len(resp.body) > 1024
        and resp.content_type.split(";")[0]
        in ("text/html", "text/css", "text/plain", "text/csv", JSON, "image/svg+xml")
    )


class Handler(BaseHTTPRequestHandler):
    server_version = "netprobe-web"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30  # a client that stalls mid-request is dropped
    app: App  # set on the subclass made by make_server
    slots: threading.BoundedSemaphore

    def _serve(self) -> None:
        if not self.slots.acquire(blocking=False):
            self._send(Response(503, b"busy\n", "text/plain", {"Retry-After": "5"}))
            return
        try:
            body = b""
            if self.command == "POST":
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY:
                    self._send(Response(413, b"", "text/plain"))
                    return
                body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            resp = self.app.handle(Request(self.command, self.path, headers, body))
            self._send(resp, headers.get("accept-encoding", ""))
        finally:
            self.slots.release()

    def _send(self, resp: Response, accept: str = "") -> None:
        body = resp.body
        headers = dict(SECURITY_HEADERS)
        headers.setdefault("Cache-Control", "no-store")
        headers.update(resp.headers)
        if compressible(resp, accept):
            body = gzip.compress(body, 6, mtime=0)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class Server6(Server):
    address_family = socket.AF_INET6


def make_server(app: App, host: str, port: int) -> Server:
    """Bound and listening; an IPv6 host gets an IPv6 socket."""
    handler = type(
        "BoundHandler", (Handler,), {"app": app, "slots": threading.BoundedSemaphore(app.cfg.web.max_clients)}
    )
    return (Server6 if ":" in host else Server)((host, port), handler)
