"""End to end on namespaces: three desa behind one hub, real `netprobe run` agents, Mosquitto, `netprobe collect`,
and local receivers for the webhook, the Telegram Bot API, the WhatsApp gateway and SMTP (STARTTLS).

The bed (tests/incidents/bed.py says what is emulated how) is built once; each test waits until
every desa is up and no incident is open, does one thing to the network, and checks the
incidents in the collector's database and the messages the receivers got.
"""

from __future__ import annotations

import collections
import datetime as dt
import shutil
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest

from agent.collector.incidents import store as istore
from agent.collector.incidents.channels import sign
from agent.collector.incidents.engine import Incident
from agent.collector.store import open_store
from tests.fixtures.testbed import testbed_unavailable as why_no_testbed
from tests.incidents.bed import DESA, NODES, Bed

pytestmark = [pytest.mark.testbed, pytest.mark.broker, pytest.mark.slow]
CHANNELS = ("email", "telegram", "webhook", "whatsapp")


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    reason = why_no_testbed() or ("" if shutil.which("mosquitto") else "needs mosquitto")
    if reason:
        pytest.skip(reason)
    b = Bed(tmp_path_factory.mktemp("incidents-bed"))
    try:
        b.build()
        b.start_services()
        for i in range(3):
            b.start_agent(i)
        assert wait(lambda: all(n in fresh_nodes(b) for n in NODES), 60), b.log("collector")
        yield b
    finally:
        b.destroy()


def wait(predicate: Callable[[], Any], timeout: float, step: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(step)


def db_read(fn: Callable[..., Any], bed: Bed, *args: Any, **kw: Any) -> Any:
    store = open_store(path=str(bed.db), readonly=True)
    try:
        return fn(store, *args, **kw)
    finally:
        store.close()


def fresh_nodes(bed: Bed) -> set[str]:
    rows = db_read(lambda s: s.query("SELECT node, last_seen, status FROM nodes"), bed)
    return {n for n, seen, status in rows if seen and time.time() - seen < 2.0 and status == "online"}


def quiet(bed: Bed) -> None:
    """Every desa reporting, nothing open, nothing left to send: a clean start for the next fault."""
    ok = wait(
        lambda: (
            fresh_nodes(bed) == set(NODES)
            and not db_read(istore.listing, bed, True)
            and not db_read(istore.pending, bed)
        ),
        90,
    )
    assert ok, bed.log("collector")[-3000:]


def incidents_since(bed: Bed, t0: float, members: bool = False) -> list[Incident]:
    """Incidents that began since t0; with `members`, also those another incident speaks for."""
    return [i for i in db_read(istore.listing, bed, members=members) if i.start >= t0 - 3.0]


def closed(bed: Bed, t0: float, match: Callable[[Incident], bool], timeout: float = 60) -> Incident:
    def found() -> Optional[Incident]:
        hits = [i for i in incidents_since(bed, t0) if match(i)]
        return hits[0] if hits and all(i.end is not None for i in hits) else None

    inc = wait(found, timeout)
    assert inc is not None, (incidents_since(bed, t0), bed.log("collector")[-3000:])
    return inc


def told(bed: Bed, incident_id: str, wait_for: int = 8, timeout: float = 30) -> dict[str, list[str]]:
    """Per channel, the events told about one incident, once `wait_for` messages arrived (and 2 s more)."""
    wait(lambda: len([m for m in bed.messages() if m["incident"] == incident_id]) >= wait_for, timeout)
    time.sleep(2.0)
    out: dict[str, list[str]] = collections.defaultdict(list)
    for m in bed.messages():
        if m["incident"] == incident_id:
            out[m["channel"]].append(m["event"])
    return dict(out)


ONE_OPEN_ONE_RESOLVED = {c: ["open", "resolved"] for c in CHANNELS}


def test_a_cut_uplink_is_one_uplink_incident_of_the_right_length_told_once_open_and_once_resolved(bed: Bed) -> None:
    quiet(bed)
    t0 = time.time()
    bed.cut_desa(0)
    time.sleep(15)
    bed.restore_desa(0)
    t1 = time.time()
    inc = closed(bed, t0, lambda i: i.node == NODES[0])
    assert inc.end is not None
    assert inc.cause == "uplink", inc.evidence
    assert abs((inc.end - inc.start) - (t1 - t0)) <= 3.0, (inc.start - t0, inc.end - t1)
    assert told(bed, inc.id) == ONE_OPEN_ONE_RESOLVED
    hooks = [m for m in bed.messages() if m["incident"] == inc.id and m["channel"] == "webhook"]
    assert [m["cause"] for m in hooks] == ["unknown", "uplink"]  # told at once; the replay said why
    assert [i.node for i in incidents_since(bed, t0)] == [NODES[0]]  # the other desa were fine


def test_a_node_that_comes_back_with_a_new_boot_id_was_a_power_cut(bed: Bed) -> None:
    quiet(bed)
    t0 = time.time()
    bed.kill_agent(1)
    time.sleep(12)
    bed.start_agent(1, new_boot=True)
    inc = closed(bed, t0, lambda i: i.node == NODES[1])
    assert inc.cause == "power", inc.evidence
    power = next(e[1] for e in inc.evidence if e[0] == "power")
    assert power["before"] != power["after"] and power["minutes"] >= 0
    assert told(bed, inc.id) == ONE_OPEN_ONE_RESOLVED


def test_an_agent_restarted_in_the_same_boot_was_the_agent_not_the_power(bed: Bed) -> None:
    quiet(bed)
    t0 = time.time()
    bed.kill_agent(1)
    time.sleep(12)
    bed.start_agent(1)  # the same boot id, and CLOCK_BOOTTIME ran on
    inc = closed(bed, t0, lambda i: i.node == NODES[1])
    assert inc.cause == "agent", inc.evidence
    assert told(bed, inc.id) == ONE_OPEN_ONE_RESOLVED


def test_a_cut_shared_upstream_is_one_upstream_incident_listing_the_three_desa(bed: Bed) -> None:
    quiet(bed)
    t0 = time.time()
    bed.cut_upstream()
    time.sleep(15)
    bed.restore_upstream()
    group = closed(bed, t0, lambda i: i.group == "hub-sekayu")
    assert group.cause == "upstream" and group.node == ""
    assert sorted(m["desa"] for m in group.members) == sorted(d for _, d in DESA)
    assert told(bed, group.id) == ONE_OPEN_ONE_RESOLVED
    since = [m for m in bed.messages() if m["raw"]["at"] >= t0]
    assert {m["incident"] for m in since} == {group.id}  # not one per desa
    own = [i for i in incidents_since(bed, t0, members=True) if i.kind == "dark" and i.id != group.id]
    assert sorted(i.node for i in own) == sorted(NODES) and {i.parent for i in own} == {group.id}


def test_a_link_flapping_six_times_is_one_incident(bed: Bed) -> None:
    quiet(bed)
    t0 = time.time()
    for _ in range(6):
        bed.cut_desa(2)
        time.sleep(2.0)
        bed.restore_desa(2)
        time.sleep(1.0)
    inc = closed(bed, t0, lambda i: i.node == NODES[2])
    assert [i.id for i in incidents_since(bed, t0)] == [inc.id]
    assert told(bed, inc.id) == ONE_OPEN_ONE_RESOLVED


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")


def test_a_maintenance_window_tells_nothing_even_when_it_ends_while_the_desa_is_still_down(bed: Bed) -> None:
    quiet(bed)
    earlier = {i.id for i in db_read(istore.listing, bed)}
    sent_before = len(bed.messages())
    now = time.time()
    # The window is written before the restart, so it must outlast the restart and the wait for a
    # quiet fleet (a few seconds, half a minute on a busy machine) before the cut begins inside it.
    end = now + 60
    bed.maintenance = [{"name": "pekerjaan ISP", "nodes": [NODES[2]], "start": iso(now - 60), "end": iso(end)}]
    try:
        bed.restart_collector()  # also shows that incidents and what was told survive a restart
        assert {i.id for i in db_read(istore.listing, bed)} == earlier
        quiet(bed)
        t0 = time.time()
        assert t0 < end - 15, f"the fleet took {t0 - now:.0f} s to be quiet after the restart"
        bed.cut_desa(2)
        wait(lambda: time.time() > end + 8, 90, step=0.5)  # the window ended 8 s ago; the desa is still down
        bed.restore_desa(2)
        inc = closed(bed, t0, lambda i: i.node == NODES[2])
        assert inc.maintenance == "pekerjaan ISP" and inc.cause == "uplink"
        time.sleep(3.0)
        assert len(bed.messages()) == sent_before  # nothing inside, nothing at its end, nothing sent twice
    finally:
        bed.maintenance = []


def test_a_webhook_receiver_down_during_an_incident_gets_each_message_once_after_it_returns(bed: Bed) -> None:
    quiet(bed)
    bed.stop("webhook")
    t0 = time.time()
    bed.cut_desa(0)
    time.sleep(10)
    bed.restore_desa(0)
    inc = closed(bed, t0, lambda i: i.node == NODES[0])
    others = told(bed, inc.id, wait_for=6)
    assert others == {c: ["open", "resolved"] for c in CHANNELS if c != "webhook"}
    waiting = db_read(istore.pending, bed)
    assert [(q.channel, q.event) for q in waiting] == [("webhook", "open"), ("webhook", "resolved")]
    assert all(q.attempts >= 1 for q in waiting[:1])
    bed.restart_collector()  # the queue is in the database: a restart loses nothing
    bed.start_webhook()
    assert told(bed, inc.id)["webhook"] == ["open", "resolved"]
    hooks = [m for m in bed.messages() if m["incident"] == inc.id and m["channel"] == "webhook"]
    assert len({m["key"] for m in hooks}) == 2
    for m in hooks:
        raw = m["raw"]
        assert raw["headers"]["x-netprobe-signature"] == sign("kunci-rahasia", raw["body"].encode())
    assert db_read(istore.pending, bed) == []
