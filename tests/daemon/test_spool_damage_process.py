"""A running `netprobe run` whose spool is damaged under it (issue 12, finding 6), with a stand-in
NOTIFY_SOCKET as systemd's: it rebuilds the spool and goes on measuring, publishing and petting the
watchdog; when the rebuild is impossible it stops petting, so systemd restarts it.

The agent starts with a 300-Reading backlog and the broker down, so it spools. Then the test
checkpoints the spool from outside and overwrites pages of the backlog in the middle of the file with
garbage (tests/publish/test_spool_damage.py has the helpers), and starts the broker: the publisher's
replay walks into the damaged pages.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.test_mqtt import NODE, prefill_spool, readings
from tests.fixtures.agentd import agent_toml
from tests.fixtures.collector import wait_until
from tests.publish.test_spool_damage import held_by, middle_pages, overwrite, rows

pytestmark = pytest.mark.broker


class Notify:
    """systemd's side of sd_notify: every datagram's lines, with when they came."""

    def __init__(self) -> None:
        self.name = f"netprobe-damage-{os.getpid()}-{time.monotonic_ns()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.sock.settimeout(0.1)
        self.got: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    @property
    def env(self) -> dict[str, str]:
        return {"NOTIFY_SOCKET": "@" + self.name, "WATCHDOG_USEC": "1000000"}  # pet every 0.5 s

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.got += [(time.monotonic(), line) for line in data.decode().splitlines()]

    def since(self, when: float, prefix: str) -> list[str]:
        return [line for t, line in list(self.got) if t >= when and line.startswith(prefix)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def notify() -> Iterator[Notify]:
    n = Notify()
    yield n
    n.close()


def checkpoint(path: Path) -> None:
    """Every page of the WAL into the file, and the WAL emptied: the file holds the only copy of the backlog."""
    db = sqlite3.connect(path, timeout=10)
    try:
        assert wait_until(lambda: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0, 10)
    finally:
        db.close()


def damage_the_backlog(path: Path) -> set[int]:
    """Garbage over three pages of the backlog (the first 30 pages of Readings); returns their seqs."""
    checkpoint(path)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    before = rows(db)
    db.close()
    pages = middle_pages(path, 3, among=slice(0, 30))
    doomed = held_by(path, pages, before)
    overwrite(path, pages)
    return {int(before[i][4]) for i in doomed}


def start(agentd: Any, mosquitto: Any, subscriber: Any, tcp_address: str, tmp_path: Path, env: dict[str, str]):
    state = tmp_path / "state"
    prefill_spool(state, 300)
    broker = mosquitto(persistence=True)
    sub = subscriber(broker, "netprobe/#", persistent=True, client_id=f"damage-sub-{os.getpid()}")
    broker.stop()  # the agent spools; the subscriber's session keeps what comes while it reconnects
    cfg = agent_toml(state, tcp=tcp_address, broker=broker.url, interval=0.2, mqtt={"confirm": "broker"})
    agent = agentd(cfg, env=env)
    assert wait_until(lambda: agent.spool().rows >= 305, 15), agent.stderr()[-2000:]
    return state, broker, sub, agent


def test_damage_met_while_running_is_rebuilt_and_the_agent_keeps_measuring_publishing_and_petting(
    agentd, mosquitto, subscriber, tcp_listener, tmp_path, notify
):
    state, broker, sub, agent = start(agentd, mosquitto, subscriber, tcp_listener.address, tmp_path, notify.env)
    lost = damage_the_backlog(state / "spool.sqlite3")
    assert lost and max(lost) < 300
    broker.start()  # the replay walks into the damaged pages

    # Before the fix the publisher stopped at the damaged page on every session, for ever.
    assert agent.wait_stderr("copied into a new spool", 20), agent.stderr()[-3000:]
    rebuilt_at = time.monotonic()
    assert f"{len(lost)} could not be read" in agent.stderr()
    # Wherever the publisher met the damage (its clamp at a session's start, or the replay), it said so
    # in one line and went on: no traceback, and it never stopped.
    assert "Traceback" not in agent.stderr(), agent.stderr()[-3000:]
    assert "publisher stopped" not in agent.stderr()
    aside = [p.name for p in state.iterdir() if ".damaged-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1

    # The backlog that could be read arrives, and so do Readings measured after the rebuild.
    last = agent.spool().last_seq[NODE]
    want = set(range(1, 301)) - lost
    assert sub.wait_for(lambda m: want <= {r["seq"] for r in readings(sub)}, 20), sorted(
        want - {r["seq"] for r in readings(sub)}
    )[:20]
    assert sub.wait_for(lambda m: max(r["seq"] for r in readings(sub)) > last + 5, 10)
    got = {r["seq"] for r in readings(sub)}
    assert not got & lost  # nothing made up for what was lost
    assert agent.spool().last_seq[NODE] > last  # and the seq went on rising
    assert wait_until(lambda: agent.spool().dropped == len(lost), 5), agent.spool()

    # The watchdog was petted all along, and is still.
    assert wait_until(lambda: len(notify.since(rebuilt_at, "WATCHDOG=1")) >= 4, 5), notify.got[-10:]
    assert agent.proc.poll() is None
    assert agent.stop() == 0


@contextlib.contextmanager
def immutable(directory: Path) -> Iterator[None]:
    """No file may be created in, renamed in or removed from `directory`, even by root (ext4's +i)."""
    done = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not possible here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


@pytest.mark.root
def test_when_the_rebuild_is_impossible_the_watchdog_is_no_longer_petted(
    agentd, mosquitto, subscriber, tcp_listener, tmp_path, notify
):
    if os.geteuid() != 0:
        pytest.skip("needs root (chattr +i)")
    state, broker, _, agent = start(agentd, mosquitto, subscriber, tcp_listener.address, tmp_path, notify.env)
    damage_the_backlog(state / "spool.sqlite3")
    with immutable(state):  # the rebuild cannot create its new file
        broker.start()
        assert agent.wait_stderr("could not be rebuilt", 20), agent.stderr()[-3000:]
        failed_at = time.monotonic()
        time.sleep(3.0)
        assert notify.since(failed_at + 0.6, "WATCHDOG=1") == []  # systemd would restart it now
        assert len(notify.since(failed_at, "STATUS=")) >= 3  # alive, and saying so
        assert "not petting the systemd watchdog" in agent.stderr()
        assert agent.proc.poll() is None
