"""Diagnose verdicts from Readings: which part is broken, and the words for it."""

from __future__ import annotations

import re
import string
from typing import Any, Optional

import pytest

from agent import i18n
from agent.diagnose import verdicts
from agent.diagnose.run import Diagnosis
from agent.reading.model import Identity, Outcome, ProbeError, Reading, make_reading

ID = Identity("muba-lais-1", {"kecamatan": "Lais", "desa": "Petaling"})


def reading(kind: str, target: str, ok: bool = True, code: Optional[str] = None, **fields: Any) -> Reading:
    err = None if ok else ProbeError(code or "timeout", "x")
    return make_reading(ID, kind, target, Outcome(ok, dict(fields), err), 0.0, 0.0, 0.1)


def up(target: str, rtt: float = 10.0, loss: float = 0.0) -> Reading:
    return reading("icmp", target, rtt_p50_ms=rtt, loss_pct=loss)


def down(target: str, code: str = "timeout") -> Reading:
    return reading("icmp", target, ok=False, code=code, loss_pct=100.0)


def dns(ok: bool = True, server: str = "system", code: str = "timeout", ms: float = 20.0) -> Reading:
    if ok:
        return reading("dns", "google.com", query_ms=ms, rcode="NOERROR", server=server)
    return reading("dns", "google.com", ok=False, code=code, server=server)


def web(ok: bool = True, code: str = "timeout", **fields: Any) -> Reading:
    if ok:
        fields = {"status": 204, "ttfb_ms": 40.0, "total_ms": 90.0, **fields}
    return reading("http", "https://www.google.com/generate_204", ok=ok, code=code, **fields)


def run(**by_role: list[Reading]) -> tuple[str, dict[str, tuple[str, Optional[str]]]]:
    roles = {k.replace("_", "-"): v for k, v in by_role.items()}
    checks = verdicts.latency_checks(roles)
    summary = {c.name: (c.status, c.hint[0] if c.hint else None) for c in checks}
    return verdicts.overall(checks), summary


def test_all_answering_is_healthy() -> None:
    verdict, s = run(gateway=[up("gateway", 1)], internet=[up("1.1.1.1", 20)], dns_system=[dns()], web=[web()])
    assert verdict == "healthy"
    assert {name: status for name, (status, _) in s.items()} == {"gateway": "OK", "internet": "OK", "dns": "OK", "web": "OK"}


def test_dead_uplink_points_at_the_modem_and_says_it_once() -> None:
    verdict, s = run(
        gateway=[up("gateway", 1)],
        internet=[down("1.1.1.1"), down("8.8.8.8")],
        dns_system=[dns(ok=False)],
        web=[web(ok=False)],
    )
    assert verdict == "down"
    assert s["gateway"] == ("OK", None)
    assert s["internet"] == ("FAIL", "hint.uplink_down")
    assert s["dns"] == ("FAIL", "hint.dns_no_internet")
    assert s["web"] == ("FAIL", "hint.web_no_internet")


def test_no_default_route_points_at_the_lan() -> None:
    verdict, s = run(gateway=[down("gateway", "no_route")], internet=[down("1.1.1.1", "unreachable")])
    assert verdict == "down"
    assert s["gateway"] == ("FAIL", "hint.lan_no_route")
    assert s["internet"] == ("FAIL", "hint.fix_gateway_first")


def test_silent_gateway_points_at_the_router() -> None:
    _, s = run(gateway=[down("gateway")])
    assert s["gateway"] == ("FAIL", "hint.gateway_down")


def test_icmp_filtered_but_tcp_answers_is_still_internet() -> None:
    tcp_ok = reading("tcp", "1.1.1.1:443", connect_p50_ms=30.0, loss_pct=0.0)
    verdict, s = run(gateway=[up("gateway")], internet=[down("1.1.1.1"), tcp_ok], dns_system=[dns()])
    assert s["internet"] == ("OK", None) and verdict == "healthy"


def test_local_resolver_broken_but_public_dns_works() -> None:
    verdict, s = run(
        gateway=[up("gateway")], internet=[up("1.1.1.1")], dns_system=[dns(ok=False)], dns_public=[dns(server="8.8.8.8")]
    )
    assert verdict == "degraded"
    assert s["dns"] == ("FAIL", "hint.dns_local_broken")


def test_web_failing_on_name_lookup_blames_dns() -> None:
    _, s = run(gateway=[up("gateway")], internet=[up("1.1.1.1")], dns_system=[dns(ok=False)], web=[web(False, "resolve_failed")])
    assert s["dns"] == ("FAIL", "hint.dns_down")
    assert s["web"] == ("FAIL", "hint.web_needs_dns")


def test_one_site_down_is_just_that_site() -> None:
    verdict, s = run(gateway=[up("gateway")], internet=[up("1.1.1.1")], dns_system=[dns()], web=[web(False, "http_error", status=503)])
    assert verdict == "degraded" and s["web"] == ("FAIL", "hint.site_down")


@pytest.mark.parametrize("loss, rtt, status", [(0.0, 600.0, "OK"), (12.0, 30.0, "WARN"), (0.0, 1500.0, "WARN")])
def test_uplink_warns_on_loss_and_extreme_latency_but_not_on_geo_latency(loss: float, rtt: float, status: str) -> None:
    _, s = run(gateway=[up("gateway")], internet=[up("1.1.1.1", rtt, loss)])
    assert s["internet"][0] == status


def test_expiring_certificate_warns() -> None:
    _, s = run(web=[web(cert_days_left=3.0)])
    assert s["web"] == ("WARN", "hint.cert_expiring")


def test_unconfigured_checks_are_skipped_not_failed() -> None:
    verdict, s = run(gateway=[up("gateway")])
    assert s["internet"][0] == s["dns"][0] == s["web"][0] == "SKIP"
    assert verdict == "healthy"


@pytest.mark.parametrize("lang", ["en", "id"])
def test_rendered_report_names_the_part_in_each_language(lang: str) -> None:
    readings = [up("gateway", 1), down("1.1.1.1")]
    checks = verdicts.latency_checks({"gateway": readings[:1], "internet": readings[1:]})
    text = Diagnosis("muba-lais-1", readings, checks).render(lang)
    if lang == "id":
        assert "GAGAL" in text and "Hasil: MATI" in text and "parabola Starlink" in text
    else:
        assert "FAIL" in text and "Verdict: DOWN" in text and "Starlink dish" in text
    assert "1.1.1.1: " in text


def test_every_message_has_both_languages_with_the_same_placeholders() -> None:
    fmt = string.Formatter()
    for key, entry in i18n.MESSAGES.items():
        assert set(entry) == set(i18n.LANGS), key
        fields = [{f for _, f, _, _ in fmt.parse(entry[lang]) if f} for lang in i18n.LANGS]
        assert fields[0] == fields[1], key


def test_every_hint_a_rule_can_give_exists() -> None:
    source = open(verdicts.__file__).read()
    for key in set(re.findall(r'"((?:hint|num)\.[a-z_]+)"', source)):
        assert key in i18n.MESSAGES, key
