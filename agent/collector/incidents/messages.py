"""What people read about an incident, in Bahasa Indonesia and English: what, where, since when,
the cause with its evidence, and the next step for whoever responds. Pure.

Keys are stable; the texts may be improved freely. Every key exists in both languages
with the same placeholders (tests/incidents/test_messages.py checks it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from collections.abc import Sequence
from typing import Any

from agent.collector.incidents import causes as C
from agent.collector.incidents.engine import Incident, Notice
from agent.i18n import lookup
from agent.i18n import text as fleet_text

LANGS = ("id", "en")

MESSAGES: dict[str, dict[str, str]] = {
    # what
    "what.dark": {"en": "DARK", "id": "GELAP"},
    "what.degraded": {"en": "DEGRADED", "id": "TERGANGGU"},
    "what.resolved": {"en": "RESOLVED", "id": "PULIH"},
    "what.cause": {"en": "CAUSE REVISED", "id": "PENYEBAB DIPERBARUI"},
    # causes
    "cause.power": {"en": "power cut (PLN) or the node switched off", "id": "listrik padam (PLN) atau node mati"},
    "cause.uplink": {
        "en": "uplink down (dish, ONT, modem or the ISP)",
        "id": "uplink putus (parabola, ONT, modem atau ISP)",
    },
    "cause.lan": {"en": "local network or gateway down", "id": "jaringan lokal atau gateway mati"},
    "cause.agent": {"en": "the netprobe agent stopped (the node is on)", "id": "agen netprobe berhenti (node menyala)"},
    "cause.upstream": {
        "en": "upstream failure: several desa behind one hub or ISP",
        "id": "gangguan hulu: beberapa desa di belakang satu hub atau ISP",
    },
    "cause.unknown": {"en": "not known yet: no data from the node", "id": "belum diketahui: belum ada data dari node"},
    "cause.loss": {"en": "packet loss", "id": "banyak paket hilang"},
    "cause.latency": {"en": "high latency", "id": "latensi tinggi"},
    "cause.throughput": {"en": "speed below the contract", "id": "kecepatan di bawah kontrak"},
    "cause.link_change": {
        "en": "the link type changed (a backup link?)",
        "id": "jenis jaringan berubah (jalur cadangan?)",
    },
    "cause.clock": {"en": "clock not synced", "id": "jam tidak sinkron"},
    "cause.budget": {"en": "data budget spent", "id": "kuota data habis"},
    # next steps, one per responder
    "next.power": {
        "en": "Check PLN mains and the UPS at the site; if there is power, check the node's power supply.",
        "id": "Cek listrik PLN / UPS di lokasi; jika listrik ada, cek adaptor daya node.",
    },
    "next.area_power": {
        "en": "Ask PLN about an outage in the area (pemadaman); check the UPS of each site.",
        "id": "Tanyakan ke PLN soal pemadaman di wilayah ini; cek UPS tiap lokasi.",
    },
    "next.uplink": {
        "en": "Check the dish/ONT/modem (power, lights, cables); if they look fine, call the operator's helpdesk.",
        "id": "Cek dish/ONT/modem (listrik, lampu, kabel); jika normal, hubungi helpdesk operator.",
    },
    "next.lan": {
        "en": "Check the router/gateway (power, lights) and the LAN cable to the node; restart the router.",
        "id": "Cek router/gateway (listrik, lampu) dan kabel LAN ke node; nyalakan ulang router.",
    },
    "next.agent": {
        "en": "The node runs but netprobe stopped: check `systemctl status netprobe` and its log, or restart the node.",
        "id": "Node menyala tetapi netprobe berhenti: cek `systemctl status netprobe` dan log-nya, atau nyalakan ulang node.",
    },
    "next.upstream": {
        "en": "Call the ISP or check the kecamatan hub: several desa are cut off at once.",
        "id": "Hubungi ISP atau cek hub kecamatan: beberapa desa terputus bersamaan.",
    },
    "next.unknown": {
        "en": "Ask someone at the desa whether there is power and whether the devices' lights are on.",
        "id": "Tanyakan ke petugas desa apakah listrik menyala dan lampu perangkat hidup.",
    },
    "next.loss": {
        "en": "Tell the operator these loss figures; check cables, and the dish for obstructions.",
        "id": "Sampaikan angka paket hilang ini ke operator; cek kabel, dan apakah parabola terhalang.",
    },
    "next.latency": {
        "en": "Tell the operator these figures; check whether someone's downloads fill the link.",
        "id": "Sampaikan angka ini ke operator; cek apakah ada unduhan besar yang memenuhi jaringan.",
    },
    "next.throughput": {
        "en": "Report the measured speed to the operator against the contract.",
        "id": "Laporkan kecepatan terukur ke operator sesuai kontrak.",
    },
    "next.link_change": {
        "en": "The main link failed and a backup carries the traffic: check the main link (fiber, ONT).",
        "id": "Jalur utama gagal dan jalur cadangan dipakai: cek jalur utama (fiber, ONT).",
    },
    "next.clock": {
        "en": "Check time sync on the node (`timedatectl`); readings are dated by the collector meanwhile.",
        "id": "Cek sinkronisasi waktu di node (`timedatectl`); sementara itu waktu data diperbaiki oleh kolektor.",
    },
    "next.budget": {
        "en": "Speed tests pause until the quota resets; raise [throughput] budget in the node's config if needed.",
        "id": "Tes kecepatan berhenti sampai kuota diperbarui; naikkan anggaran [throughput] di konfigurasi node bila perlu.",
    },
    # evidence
    "ev.uplink": {
        "en": "the gateway answered and nothing beyond it, in {intervals} intervals of readings taken during the outage",
        "id": "gateway menjawab tetapi tidak ada yang di luar itu, pada {intervals} interval pengukuran selama gangguan",
    },
    "ev.lan": {
        "en": "the gateway did not answer in {intervals} intervals",
        "id": "gateway tidak menjawab pada {intervals} interval",
    },
    "ev.no_gateway": {
        "en": "public targets failed in {intervals} intervals; no gateway readings to tell LAN from uplink",
        "id": "target publik gagal pada {intervals} interval; tidak ada data gateway untuk membedakan LAN dari uplink",
    },
    "ev.power": {
        "en": "no readings for {minutes} min, then back with a new boot ({before} -> {after})",
        "id": "tidak ada pengukuran selama {minutes} menit, lalu kembali dengan boot baru ({before} -> {after})",
    },
    "ev.agent": {
        "en": "no readings for {minutes} min, same boot {boot} with its clock running on: the node stayed up",
        "id": "tidak ada pengukuran selama {minutes} menit, boot sama {boot} dan jamnya terus berjalan: node tetap menyala",
    },
    "ev.gap": {"en": "no readings for {minutes} min", "id": "tidak ada pengukuran selama {minutes} menit"},
    "ev.silent": {"en": "no data since the node went {status}", "id": "tidak ada data sejak node {status}"},
    "ev.group": {"en": "behind the configured upstream {name}", "id": "di belakang jalur hulu {name}"},
    "ev.isp_hop": {"en": "they share the ISP hop {name}", "id": "mereka memakai hop ISP yang sama, {name}"},
    "ev.members": {"en": "{n} desa ({causes})", "id": "{n} desa ({causes})"},
    "ev.loss": {"en": "mean loss {loss}% (limit {limit}%)", "id": "rata-rata paket hilang {loss}% (batas {limit}%)"},
    "ev.latency": {
        "en": "RTT p50 {ms} ms on {link} (limit {limit} ms)",
        "id": "RTT p50 {ms} ms pada {link} (batas {limit} ms)",
    },
    "ev.throughput": {
        "en": "download {mbps} Mbit/s, under {share}% of the contracted {contract} Mbit/s",
        "id": "unduh {mbps} Mbit/s, di bawah {share}% dari kontrak {contract} Mbit/s",
    },
    "ev.link_change": {"en": "{from} -> {to}", "id": "{from} -> {to}"},
    "ev.clock": {"en": "unsynced for {hours} h", "id": "tidak sinkron selama {hours} jam"},
    "ev.budget": {"en": "{why}", "id": "{why}"},
    "ev.none": {"en": "none yet", "id": "belum ada"},
    # the lines of a message
    "subject": {"en": "[netprobe] {what}: {where} - {cause}", "id": "[netprobe] {what}: {where} - {cause}"},
    "where.node": {"en": "{desa} ({kecamatan})", "id": "{desa} ({kecamatan})"},
    "where.group": {"en": "{n} desa behind {group}", "id": "{n} desa di belakang {group}"},
    "open.dark": {
        "en": "No internet at desa {desa}, kecamatan {kecamatan} (node {node}) since {since}.",
        "id": "Tidak ada internet di desa {desa}, kecamatan {kecamatan} (node {node}) sejak {since}.",
    },
    "open.degraded": {
        "en": "Service degraded at desa {desa}, kecamatan {kecamatan} (node {node}) since {since}.",
        "id": "Layanan terganggu di desa {desa}, kecamatan {kecamatan} (node {node}) sejak {since}.",
    },
    "open.group": {
        "en": "No internet at {n} desa behind one upstream ({group}) since {since}: {places}.",
        "id": "Tidak ada internet di {n} desa di belakang satu jalur hulu ({group}) sejak {since}: {places}.",
    },
    "resolved.node": {
        "en": "Resolved: desa {desa}, kecamatan {kecamatan} (node {node}) is back since {end}, after {duration}.",
        "id": "Pulih: desa {desa}, kecamatan {kecamatan} (node {node}) kembali normal sejak {end}, setelah {duration}.",
    },
    "resolved.group": {
        "en": "Resolved: the {n} desa behind {group} are back since {end}, after {duration}: {places}.",
        "id": "Pulih: {n} desa di belakang {group} kembali normal sejak {end}, setelah {duration}: {places}.",
    },
    "cause.node": {
        "en": "Cause revised for desa {desa}, kecamatan {kecamatan} (node {node}), affected since {since}.",
        "id": "Penyebab diperbarui untuk desa {desa}, kecamatan {kecamatan} (node {node}), terganggu sejak {since}.",
    },
    "cause.group": {
        "en": "Cause revised for the {n} desa behind {group}, dark since {since}: {places}.",
        "id": "Penyebab diperbarui untuk {n} desa di belakang {group}, gelap sejak {since}: {places}.",
    },
    "line.cause": {"en": "Cause: {cause}.", "id": "Penyebab: {cause}."},
    "line.cause_was": {
        "en": "Cause: {cause} (first reported as: {previous}).",
        "id": "Penyebab: {cause} (awalnya dilaporkan: {previous}).",
    },
    "line.evidence": {"en": "Evidence: {evidence}.", "id": "Bukti: {evidence}."},
    "line.next": {"en": "Next step: {next}", "id": "Langkah berikut: {next}"},
    "line.overrun": {
        "en": 'It began inside the maintenance window "{window}", which ended {minutes} min ago.',
        "id": 'Gangguan ini mulai di dalam jadwal pemeliharaan "{window}", yang sudah berakhir {minutes} menit lalu.',
    },
    "line.id": {"en": "Incident {id}", "id": "Insiden {id}"},
    # netprobe incidents
    "cli.none": {"en": "No incidents.", "id": "Tidak ada insiden."},
    "cli.col.state": {"en": "State", "id": "Status"},
    "cli.col.since": {"en": "Since", "id": "Sejak"},
    "cli.col.duration": {"en": "Duration", "id": "Lama"},
    "cli.col.severity": {"en": "Severity", "id": "Tingkat"},
    "cli.col.cause": {"en": "Cause", "id": "Penyebab"},
    "cli.col.where": {"en": "Where", "id": "Lokasi"},
    "cli.col.evidence": {"en": "Evidence", "id": "Bukti"},
    "cli.open": {"en": "open", "id": "terbuka"},
    "cli.resolved": {"en": "resolved", "id": "pulih"},
    "cli.critical": {"en": "critical", "id": "kritis"},
    "cli.warning": {"en": "warning", "id": "peringatan"},
    "cli.summary": {
        "en": "{open} open of {total} listed; messages: {sent} sent, {waiting} waiting, {failed} failed",
        "id": "{open} terbuka dari {total}; pesan: {sent} terkirim, {waiting} menunggu, {failed} gagal",
    },
    "html.title": {"en": "Open incidents", "id": "Insiden terbuka"},
    "html.none": {"en": "No open incidents.", "id": "Tidak ada insiden terbuka."},
    "dur.days": {"en": "{d} d {h} h", "id": "{d} hari {h} jam"},
    "dur.hours": {"en": "{h} h {m} min", "id": "{h} jam {m} menit"},
    "dur.minutes": {"en": "{m} min", "id": "{m} menit"},
}


def t(key: str, lang: str, **params: Any) -> str:
    return lookup(MESSAGES, key, lang, **params)


@dataclasses.dataclass(frozen=True)
class Message:
    subject: str
    text: str


def when(ts: float, tz: dt.tzinfo) -> str:
    """Local time with the zone's name: 2026-05-28 10:05 WIB."""
    return dt.datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M %Z").strip()


def duration(seconds: float, lang: str) -> str:
    minutes = max(0, round(seconds / 60.0))
    d, rest = divmod(minutes, 1440)
    h, m = divmod(rest, 60)
    if d:
        return t("dur.days", lang, d=d, h=h)
    if h:
        return t("dur.hours", lang, h=h, m=m)
    return t("dur.minutes", lang, m=m)


def cause_text(inc: Incident, lang: str) -> str:
    return t(f"cause.{inc.cause}", lang)


def next_step(inc: Incident, lang: str) -> str:
    if not inc.node and inc.cause == C.POWER:
        return t("next.area_power", lang)
    return t(f"next.{inc.cause}", lang)


def evidence_text(inc: Incident, lang: str) -> str:
    parts = []
    for key, params in inc.evidence:
        params = dict(params)
        if key == "silent":
            params["status"] = fleet_text(f"fleet.state.{params.get('status', 'silent')}", lang)
        if f"ev.{key}" in MESSAGES:
            try:
                parts.append(t(f"ev.{key}", lang, **params))
            except (KeyError, IndexError, ValueError):
                continue  # evidence stored by another version: left out, never an error
    return "; ".join(parts) or t("ev.none", lang)


def places(inc: Incident) -> str:
    return ", ".join(f"{m.get('desa', '')} ({m.get('kecamatan', '')})" for m in inc.members)


def render(notice: Notice, lang: str, tz: dt.tzinfo) -> Message:
    """One notice as a subject and a plain text: what, where, since when, cause, evidence, next step."""
    inc = notice.incident
    group = not inc.node
    place = {
        "desa": inc.desa, "kecamatan": inc.kecamatan, "node": inc.node, "group": inc.group,
        "n": len(inc.members), "places": places(inc), "since": when(inc.start, tz),
    }  # fmt: skip
    where = t("where.group", lang, **place) if group else t("where.node", lang, **place)
    lines = []
    if notice.event == "open":
        what = t(f"what.{inc.kind}", lang)
        key = "open.group" if group else f"open.{inc.kind}"
        lines += [t(key, lang, **place), t("line.cause", lang, cause=cause_text(inc, lang))]
    elif notice.event == "resolved":
        what = t("what.resolved", lang)
        end = inc.end if inc.end is not None else notice.at
        lines.append(
            t("resolved.group" if group else "resolved.node", lang, **place, end=when(end, tz),
              duration=duration(end - inc.start, lang))
        )  # fmt: skip
        if notice.previous_cause and notice.previous_cause != inc.cause:
            previous = t(f"cause.{notice.previous_cause}", lang)
            lines.append(t("line.cause_was", lang, cause=cause_text(inc, lang), previous=previous))
        else:
            lines.append(t("line.cause", lang, cause=cause_text(inc, lang)))
    else:
        what = t("what.cause", lang)
        previous = t(f"cause.{notice.previous_cause}", lang) if notice.previous_cause else "-"
        lines += [
            t("cause.group" if group else "cause.node", lang, **place),
            t("line.cause_was", lang, cause=cause_text(inc, lang), previous=previous),
        ]
    lines.append(t("line.evidence", lang, evidence=evidence_text(inc, lang)))
    if notice.event != "resolved":
        lines.append(t("line.next", lang, next=next_step(inc, lang)))
    if notice.overrun and inc.maintenance_end is not None:
        minutes = max(0, round((notice.at - inc.maintenance_end) / 60.0))
        lines.append(t("line.overrun", lang, window=inc.maintenance, minutes=minutes))
    lines.append(t("line.id", lang, id=inc.id))
    subject = t("subject", lang, what=what, where=where, cause=cause_text(inc, lang))
    return Message(subject, "\n".join(lines))


def payload(notice: Notice, key: str, tz: dt.tzinfo) -> dict[str, Any]:
    """The webhook's JSON: the incident as data, and the message in both languages."""
    inc = notice.incident
    texts = {lang: dataclasses.asdict(render(notice, lang, tz)) for lang in LANGS}
    return {
        "event": notice.event,
        "key": key,
        "at": notice.at,
        "previous_cause": notice.previous_cause or None,
        "incident": incident_dict(inc),
        "text": texts,
    }


def incident_dict(inc: Incident) -> dict[str, Any]:
    """An incident as JSON for people and programs (the webhook, `netprobe incidents --json`)."""
    return {
        "id": inc.id,
        "kind": inc.kind,
        "cause": inc.cause,
        "severity": inc.severity,
        "node": inc.node or None,
        "group": inc.group or None,
        "kecamatan": inc.kecamatan,
        "desa": inc.desa,
        "members": inc.members,
        "start": inc.start,
        "end": inc.end,
        "duration_s": round(inc.end - inc.start, 1) if inc.end is not None else None,
        "evidence": inc.evidence,
        "maintenance": inc.maintenance or None,
    }


def open_incidents_html(items: Sequence[dict[str, Any]], lang: str, tz: dt.tzinfo, now: float) -> str:
    """The fleet page's section of open incidents (`store.open_incidents` items), escaped, self-contained."""

    def esc(value: Any) -> str:
        return html.escape(str(value), quote=True)

    head = f'<section id="incidents"><h2>{esc(t("html.title", lang))}</h2>'
    if not items:
        return f'{head}<p class="note">{esc(t("html.none", lang))}</p></section>'
    cols = ("since", "duration", "severity", "cause", "where")
    rows = ["<tr>" + "".join(f"<th>{esc(t(f'cli.col.{c}', lang))}</th>" for c in cols) + "</tr>"]
    for i in items:
        members = i.get("members") or []
        if i.get("node"):
            where = f"{i.get('kecamatan', '')} / {i.get('desa', '')} / {i['node']}"
        else:
            where = f"{i.get('group') or ''}: " + ", ".join(
                f"{m.get('desa', '')} ({m.get('kecamatan', '')})" for m in members
            )
        cells = (
            when(float(i["start"]), tz), duration(now - float(i["start"]), lang),
            t(f"cli.{i.get('severity', 'critical')}", lang), t(f"cause.{i.get('cause', 'unknown')}", lang), where,
        )  # fmt: skip
        rows.append(
            f'<tr class="{esc(i.get("severity", ""))}">' + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>"
        )
    return f"{head}<table>{''.join(rows)}</table></section>"
