"""What the daemon schedules, from the config: the review's defects around the automatic targets."""

from __future__ import annotations

from agent.config import parse_config
from agent.daemon.daemon import scheduled_targets


def test_linktype_disabled_means_no_link_look_is_scheduled() -> None:
    on = parse_config({})
    off = parse_config({"linktype": {"enabled": False}})
    assert any(t.kind == "link" for t in scheduled_targets(on))
    assert not any(t.kind == "link" for t in scheduled_targets(off))
    assert {t.label for t in scheduled_targets(off)} == {t.label for t in scheduled_targets(on)} - {"link"}


def test_the_automatic_host_target_never_shares_a_label_with_a_users_target() -> None:
    cfg = parse_config({"targets": [{"kind": "icmp", "target": "192.0.2.10", "name": "host"}]})
    labels = [t.label for t in scheduled_targets(cfg)]
    assert len(labels) == len(set(labels)) == 2  # the scheduler keys its tasks by label
    assert [t.kind for t in scheduled_targets(cfg)] == ["icmp", "host"]


def test_a_users_host_target_replaces_the_automatic_one() -> None:
    cfg = parse_config({"targets": [{"kind": "host", "target": "self", "interval": 60}]})
    assert [(t.kind, t.interval) for t in scheduled_targets(cfg)] == [("host", 60.0)]
