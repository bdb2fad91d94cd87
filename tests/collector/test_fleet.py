"""The fleet rules, pure: node state, dark desa, the bebas blankspot share, link counts, chart buckets."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.collector.fleet import Policy, chart_series, kecamatan_views, node_views, totals

NOW = 1_800_000_000.0
POLICY = Policy(interval_s=60.0, silent_intervals=3.0)


def node(name: str, kec: str, desa: str, seen_ago: float = 10.0, status: str = "online", **kw: Any) -> dict:
    return {"node": name, "kecamatan": kec, "desa": desa, "last_seen": NOW - seen_ago, "status": status, **kw}


def row(name: str, target: str, ok: bool, measurement: str = "icmp", ago: float = 10.0, **fields: Any) -> dict:
    return {"node": name, "measurement": measurement, "target": target, "ts": NOW - ago, "ok": ok, "fields": fields}


def test_state_is_offline_by_last_will_silent_after_n_intervals_else_online() -> None:
    nodes = [
        node("a", "Sekayu", "Balai Agung", status="offline"),
        node("b", "Sekayu", "Kayuara", seen_ago=181.0),
        node("c", "Sekayu", "Serasan Jaya", seen_ago=179.0),
    ]
    states = {v.node: v.state for v in node_views(nodes, [], {}, NOW, POLICY)}
    assert states == {"a": "offline", "b": "silent", "c": "online"}


def test_a_node_whose_gateway_answers_but_nothing_beyond_is_dark() -> None:
    nodes = [node("gw", "Lais", "Tanjung Agung"), node("ok", "Lais", "Petaling")]
    latest = [
        row("gw", "gateway", True, loss_pct=0.0, rtt_p50_ms=1.0),
        row("gw", "1.1.1.1", False, loss_pct=100.0),
        row("gw", "1.1.1.1:443", False, measurement="tcp"),
        row("ok", "gateway", True, loss_pct=0.0, rtt_p50_ms=1.0),
        row("ok", "1.1.1.1", False, loss_pct=100.0),
        row("ok", "8.8.8.8", True, loss_pct=20.0, rtt_p50_ms=600.0),
    ]
    views = {v.node: v for v in node_views(nodes, latest, {}, NOW, POLICY)}
    assert views["gw"].dark and views["gw"].uplink == "gateway_only" and views["gw"].state == "online"
    assert not views["ok"].dark and views["ok"].latency_p50_ms == 600.0 and views["ok"].loss_pct == 60.0


def test_kecamatan_counts_desa_reachable_when_any_node_of_it_is_and_the_blankspot_share() -> None:
    nodes = [
        node("s1", "Sekayu", "Balai Agung"),
        node("s2", "Sekayu", "Balai Agung", status="offline"),  # same desa, one node up: reachable
        node("s3", "Sekayu", "Kayuara", seen_ago=1000.0),
        node("l1", "Lalan", "Sumber Agung"),
    ]
    latest = [
        row("s1", "uplink", True, measurement="linktype", link_type="fiber", confidence=0.8),
        row("l1", "uplink", True, measurement="linktype", link_type="leo", confidence=0.7),
    ]
    views = node_views(nodes, latest, {}, NOW, POLICY)
    kecs = {k.kecamatan: k for k in kecamatan_views(views)}
    assert (kecs["Sekayu"].desa_total, kecs["Sekayu"].desa_reachable, kecs["Sekayu"].desa_dark) == (2, 1, 1)
    assert kecs["Sekayu"].link_types == {"fiber": 1, "unknown": 2}
    t = totals(list(kecs.values()))
    assert (t["desa_total"], t["desa_reachable"], t["share_reachable"]) == (3, 2, 0.6667)
    assert t["link_types"] == {"fiber": 1, "leo": 1, "unknown": 2}
    only = node_views(nodes, latest, {}, NOW, POLICY, kecamatan="lalan")
    assert [v.node for v in only] == ["l1"]


def test_sequence_gaps_and_data_used_per_node() -> None:
    n = node("a", "Sekayu", "Balai Agung", seq_min=1, seq_max=100, seq_count=97)
    (v,) = node_views([n], [], {"a": 3_000_000}, NOW, POLICY)
    assert v.seq_gaps == 3 and v.bytes_month == 3_000_000


def test_chart_series_buckets_public_targets_over_24_hours() -> None:
    since = NOW - 86400
    rows = [
        ("a", since + 10, "1.1.1.1", {"rtt_p50_ms": 20.0, "loss_pct": 0.0}),
        ("a", since + 20, "8.8.8.8", {"rtt_p50_ms": 40.0, "loss_pct": 50.0}),
        ("a", since + 20, "gateway", {"rtt_p50_ms": 1.0, "loss_pct": 0.0}),
        ("a", NOW - 1, "1.1.1.1", {"loss_pct": 100.0}),
    ]
    s = chart_series(rows, since, buckets=48)["a"]
    assert s["latency_ms"][0] == 30.0 and s["loss_pct"][0] == 25.0
    assert s["latency_ms"][47] is None and s["loss_pct"][47] == 100.0
    assert s["latency_ms"][1:47] == [None] * 46


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Sekayu", "Lais", "Lalan"]),
            st.sampled_from(["A", "B", "C", "D"]),
            st.sampled_from(["online", "offline"]),
            st.floats(0, 2000),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_kecamatan_figures_always_add_up(spec: list[tuple[str, str, str, float, bool]]) -> None:
    nodes = [node(f"n{i}", k, d, seen_ago=ago, status=s) for i, (k, d, s, ago, _) in enumerate(spec)]
    latest = [row(f"n{i}", "1.1.1.1", up, loss_pct=0.0 if up else 100.0) for i, (*_, up) in enumerate(spec)]
    views = node_views(nodes, latest, {}, NOW, POLICY)
    kecs = kecamatan_views(views)
    for k in kecs:
        assert k.desa_reachable + k.desa_dark == k.desa_total and 0.0 <= k.share_reachable <= 1.0
        assert sum(k.states.values()) == k.nodes == sum(k.link_types.values())
    t = totals(kecs)
    assert t["nodes"] == len(spec) and t["desa_total"] == len({(k, d) for k, d, *_ in spec})
    # A desa counts as reachable exactly when one of its nodes is online, fresh and gets past the gateway.
    expected = {(k, d) for k, d, s, ago, up in spec if s == "online" and ago <= POLICY.silent_after_s and up}
    assert t["desa_reachable"] == len(expected)


def test_a_desa_on_its_backup_link_is_marked_in_the_fleet_view_in_both_languages() -> None:
    """Issue 14: a fiber desa that fell back to its VSAT shows it, from its latest link Reading."""
    from agent.collector.htmlview import link_label

    nodes = [node("fb", "Sungai Lilin", "Bumi Serdang"), node("pr", "Sungai Lilin", "Sri Gunung")]
    latest = [
        row("fb", "1.1.1.1", True, measurement="link", ago=9000, link_type="fiber", backup=False),
        row("fb", "1.1.1.1", True, measurement="link", ago=30, link_type="satellite-geo", backup=True, changed=True),
        row("pr", "1.1.1.1", True, measurement="link", ago=30, link_type="fiber", backup=False),
    ]
    views = {v.node: v for v in node_views(nodes, latest, {}, NOW, POLICY)}
    assert views["fb"].on_backup and not views["pr"].on_backup
    assert views["fb"].to_dict()["on_backup"] is True
    assert link_label(views["fb"], "en").endswith("on its backup link")
    assert "cadangan" in link_label(views["fb"], "id")
    assert "backup" not in link_label(views["pr"], "en")
