"""The SQLite spool: bounds, the persistent sequence, crash safety, and the status it feeds."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

from agent.publish.spool import Spool
from agent.reading.model import Identity, Outcome, make_reading
from tests.fixtures.agentd import ROOT

IDENT = Identity("node-a", {"kecamatan": "Sekayu", "desa": "Balai Agung"})


def reading(spool: Spool, i: int = 0, node: str = "node-a"):
    ident = Identity(node, IDENT.site)
    return make_reading(ident, "icmp", "127.0.0.1", Outcome(True, {"rtt_avg_ms": float(i)}), time.time(), 1.0, 0.01,
                        spool.next_seq(node))  # fmt: skip


def test_full_spool_drops_the_oldest_and_counts_them_in_the_status(tmp_path):
    from agent.config import parse_config
    from agent.publish.mqtt import PublisherSettings, status_payload

    spool = Spool(str(tmp_path / "s.db"), max_rows=100)
    for i in range(150):
        spool.append(reading(spool, i), "t")
    stats = spool.stats()
    assert (stats.rows, stats.dropped) == (100, 50)
    kept = [json.loads(r.payload)["seq"] for r in spool.pending(0, 1000)]
    assert kept == list(range(51, 151))  # the oldest went, the newest stayed, in order
    settings = PublisherSettings(mqtt=parse_config({}).mqtt, node="node-a", site={}, config_digest="abc")
    status = json.loads(status_payload("online", settings, 12.3, spool))
    assert status["spool_depth"] == 100 and status["dropped"] == 50 and status["config"] == "abc"


def test_the_byte_bound_drops_the_oldest_too(tmp_path):
    spool = Spool(str(tmp_path / "s.db"), max_rows=10_000, max_bytes=20_000)
    for i in range(200):
        spool.append(reading(spool, i), "t")
    stats = spool.stats()
    assert stats.bytes <= 20_000 and stats.rows + stats.dropped == 200 and stats.dropped > 100
    assert json.loads(spool.pending(0, 1)[0].payload)["seq"] == stats.dropped + 1


def test_sequence_numbers_survive_a_reopen_and_are_per_node(tmp_path):
    path = str(tmp_path / "s.db")
    spool = Spool(path)
    for _ in range(3):
        spool.append(reading(spool), "t")
    spool.append(reading(spool, node="node-b"), "t")
    spool.close()
    again = Spool(path)
    assert again.next_seq("node-a") == 4 and again.next_seq("node-b") == 2
    # Delivered rows leave the spool; the counter does not go back.
    again.delete([r.id for r in again.pending(0, 100)])
    assert again.stats().rows == 0
    again.close()
    assert Spool(path).next_seq("node-a") == 4


WRITER = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
from agent.publish.spool import Spool
from agent.reading.model import Identity, make_reading
from agent.reading.model import Outcome
spool = Spool(sys.argv[1])
ident = Identity("node-a", {})
print("ready", flush=True)
while True:
    r = make_reading(ident, "icmp", "x", Outcome(True, {}), time.time(), 1.0, 0.0, spool.next_seq("node-a"))
    spool.append(r, "t")
"""


def test_kill_9_while_appending_leaves_a_consistent_spool_without_seq_gaps(tmp_path):
    path = str(tmp_path / "s.db")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, path, str(ROOT)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    seqs = [json.loads(p)["seq"] for (p,) in db.execute("SELECT payload FROM readings ORDER BY id")]
    db.close()
    assert len(seqs) > 20 and seqs == list(range(1, len(seqs) + 1))
    spool = Spool(path)
    assert spool.stats().rows == len(seqs)  # the trigger-kept counters agree with the rows
    assert spool.next_seq("node-a") == len(seqs) + 1  # the counter was committed with each row
