"""The messages people read, in Bahasa Indonesia and English: what, where, since when, why, what to do."""

from __future__ import annotations

import re
import string
from typing import Optional

import pytest

from agent.collector.incidents import causes as C
from agent.collector.incidents.engine import Incident, Notice
from agent.collector.incidents.messages import LANGS, MESSAGES, incident_dict, open_incidents_html, payload, render
from agent.collector.incidents.settings import load_zone

T = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC = 2026-05-29 03:26 WIB
TZ = load_zone("Asia/Jakarta")


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_text_exists_in_both_languages_with_the_same_placeholders() -> None:
    for key, entry in MESSAGES.items():
        assert set(entry) == set(LANGS), key
        assert fields(entry["en"]) == fields(entry["id"]), key


def test_every_cause_has_a_label_and_a_next_step_in_both_languages() -> None:
    for cause in (*C.DARK_CAUSES, *C.DEGRADED_CAUSES):
        assert f"cause.{cause}" in MESSAGES and f"next.{cause}" in MESSAGES, cause


def node_incident(cause: str = C.UPLINK, end: Optional[float] = None) -> Incident:
    return Incident(
        id="muba-sekayu-balai-agung-01/dark/1780000000", kind=C.DARK, cause=cause, severity="critical",
        node="muba-sekayu-balai-agung-01", kecamatan="Sekayu", desa="Balai Agung", start=T, end=end,
        members=[{"node": "muba-sekayu-balai-agung-01", "kecamatan": "Sekayu", "desa": "Balai Agung"}],
        evidence=[["uplink", {"intervals": 35}], ["future_key", {"x": 1}], ["lan", {"wrong": 1}]],
    )  # fmt: skip


def test_an_opening_says_what_where_since_when_why_and_what_to_do_in_indonesian() -> None:
    msg = render(Notice("open", node_incident(), 1, T + 300), "id", TZ)
    assert msg.subject == "[netprobe] GELAP: Balai Agung (Sekayu) - uplink putus (parabola, ONT, modem atau ISP)"
    assert "desa Balai Agung, kecamatan Sekayu (node muba-sekayu-balai-agung-01) sejak 2026-05-29 03:26 WIB" in msg.text
    assert "gateway menjawab tetapi tidak ada yang di luar itu, pada 35 interval" in msg.text
    assert "Langkah berikut: Cek dish/ONT/modem" in msg.text
    assert "future_key" not in msg.text  # evidence this version cannot word is left out, never an error


def test_a_resolution_gives_the_duration_and_says_when_the_cause_was_revised() -> None:
    inc = node_incident(C.UPLINK, end=T + 42 * 60)
    en = render(Notice("resolved", inc, 2, T + 50 * 60, previous_cause=C.UNKNOWN), "en", TZ)
    assert "is back since 2026-05-29 04:08 WIB, after 42 min" in en.text
    assert "Cause: uplink down (dish, ONT, modem or the ISP) (first reported as: not known yet" in en.text
    assert en.subject.startswith("[netprobe] RESOLVED: Balai Agung (Sekayu)")
    idn = render(Notice("resolved", inc, 2, T + 50 * 60, previous_cause=C.UNKNOWN), "id", TZ)
    assert "setelah 42 menit" in idn.text and "awalnya dilaporkan" in idn.text


def test_an_upstream_incident_lists_its_desa() -> None:
    members = [
        {"node": f"n{i}", "kecamatan": "Sekayu", "desa": d, "cause": C.UPLINK}
        for i, d in enumerate(("Balai Agung", "Kayuara", "Soak Baru"))
    ]
    inc = Incident(
        id="group/hub-sekayu/1", kind=C.DARK, cause=C.UPSTREAM, severity="critical", group="hub-sekayu",
        kecamatan="Sekayu", start=T, members=members,
        evidence=[["group", {"name": "hub-sekayu"}], ["members", {"n": 3, "causes": "uplink x3"}]],
    )  # fmt: skip
    msg = render(Notice("open", inc, 1, T), "en", TZ)
    assert (
        msg.subject
        == "[netprobe] DARK: 3 desa behind hub-sekayu - upstream failure: several desa behind one hub or ISP"
    )
    assert "Balai Agung (Sekayu), Kayuara (Sekayu), Soak Baru (Sekayu)" in msg.text
    assert "Call the ISP or check the kecamatan hub" in msg.text


@pytest.mark.parametrize("lang", LANGS)
def test_a_maintenance_overrun_says_so(lang: str) -> None:
    inc = node_incident(C.UNKNOWN)
    inc.maintenance, inc.maintenance_end = "pemadaman bergilir", T + 3600
    msg = render(Notice("open", inc, 1, T + 2 * 3600, overrun=True), lang, TZ)
    assert '"pemadaman bergilir"' in msg.text and re.search(r"\b60\b", msg.text)


def test_the_webhook_payload_carries_the_incident_and_both_texts() -> None:
    body = payload(Notice("open", node_incident(), 1, T), "key1", TZ)
    assert body["key"] == "key1" and body["incident"]["cause"] == C.UPLINK and body["incident"]["end"] is None
    assert set(body["text"]) == {"id", "en"} and body["text"]["id"]["subject"].startswith("[netprobe] GELAP")


def test_the_fleet_page_section_escapes_what_nodes_named_themselves() -> None:
    inc = node_incident()
    inc.desa = '<script>alert("x")</script>'
    page = open_incidents_html([incident_dict(inc)], "en", TZ, T + 3600)
    assert "<script>" not in page and "&lt;script&gt;" in page and "1 h 0 min" in page
    assert "No open incidents." in open_incidents_html([], "en", TZ, T)
