"""PostgreSQL going away under a running collector, through a TCP relay the test can cut:
readings are held unacknowledged, a graceful stop while the database is down leaves them with
the broker, and the next collector stores every one."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import pytest

from agent.collector.store import open_store
from tests.fixtures.collector import Publisher, reading, split_pg, topic_for, wait_until
from tests.helpers import free_port

pytestmark = pytest.mark.broker


class Relay:
    """127.0.0.1:port -> PostgreSQL, with a switch: cut() drops every connection and refuses new ones."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream, self.port = upstream, free_port()
        self.socks: list[socket.socket] = []
        self.lock = threading.Lock()
        self.server: socket.socket
        self.restore()

    def restore(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
                up = socket.create_connection(self.upstream)
            except OSError:
                return
            with self.lock:
                self.socks += [client, up]
            for a, b in ((client, up), (up, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked on it
        except OSError:
            pass
        self.server.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.socks.clear()


def test_postgresql_outage_holds_readings_unacked_across_a_graceful_stop_and_loses_none(
    mosquitto: Any, collector_proc: Any, pg_dsn: str
) -> None:
    dsn, schema = split_pg(pg_dsn)
    relay = Relay(("127.0.0.1", 5432))
    settings = {"dsn": dsn.replace("port=5432", f"port={relay.port}"), "pg_schema": schema}
    broker = mosquitto()
    client = {"client_id": "collector-pg"}
    col = collector_proc(broker.url, settings, broker=client)
    assert col.wait_log("subscribed to"), col.log()
    pub = Publisher(broker.url)
    send = lambda seqs: pub.publish_all(  # noqa: E731
        [(topic_for(r), json.dumps(r).encode()) for r in (reading("muba-sungai-lilin-01", s) for s in seqs)]
    )
    send(range(1, 21))
    store = open_store(dsn=dsn, pg_schema=schema)  # the test's own view, not through the relay
    assert wait_until(lambda: store.count() == 20, 10)

    # Down, then back: the running collector reconnects and stores what it held.
    relay.cut()
    send(range(21, 41))
    assert col.wait_log("cannot store readings"), col.log()
    assert store.count() == 20
    relay.restore()
    assert col.wait_log("database back after", 15), col.log()
    assert wait_until(lambda: store.count() == 40, 10)

    # Down again, and stopped meanwhile: nothing was acked, so the broker keeps it for the next one.
    relay.cut()
    send(range(41, 71))
    assert wait_until(lambda: col.log().count("cannot store readings") == 2, 10), col.log()
    assert col.stop() == 0  # graceful, and prompt, although the database is down
    assert "Traceback" not in col.log()
    relay.restore()
    again = collector_proc(broker.url, settings, broker=client)
    assert wait_until(lambda: store.count() == 70, 15), (store.count(), again.log())
    assert store.query("SELECT COUNT(DISTINCT seq) FROM readings")[0][0] == 70
    pub.close()
    assert again.stop() == 0
    relay.cut()
    store.close()
