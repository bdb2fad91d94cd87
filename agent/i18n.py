"""Words for the technician, in English and Bahasa Indonesia.

Keys are stable; the text may be improved freely. Every key must exist in
both languages (a test checks it), and placeholders must match.
"""

from __future__ import annotations

from typing import Any

LANGS = ("en", "id")

MESSAGES: dict[str, dict[str, str]] = {
    # statuses and headings
    "status.OK": {"en": "OK", "id": "OK"},
    "status.WARN": {"en": "WARN", "id": "WASPADA"},
    "status.FAIL": {"en": "FAIL", "id": "GAGAL"},
    "status.SKIP": {"en": "SKIP", "id": "LEWATI"},
    "verdict.healthy": {"en": "HEALTHY", "id": "SEHAT"},
    "verdict.degraded": {"en": "DEGRADED", "id": "TERGANGGU"},
    "verdict.down": {"en": "DOWN", "id": "MATI"},
    "heading": {"en": "netprobe diagnosis for {node}", "id": "diagnosis netprobe untuk {node}"},
    "verdict_line": {"en": "Verdict: {verdict}", "id": "Hasil: {verdict}"},
    "next_step": {"en": "Next", "id": "Langkah"},
    "check.gateway": {"en": "Gateway", "id": "Gateway"},
    "check.internet": {"en": "Internet", "id": "Internet"},
    "check.dns": {"en": "DNS", "id": "DNS"},
    "check.web": {"en": "Web", "id": "Web"},
    # numbers
    "num.rtt_loss": {"en": "{target}: {rtt} ms, loss {loss}%", "id": "{target}: {rtt} ms, hilang {loss}%"},
    "num.no_reply": {"en": "{target}: no reply ({why})", "id": "{target}: tidak ada balasan ({why})"},
    "num.dns": {"en": "{server}: {ms} ms, {rcode}", "id": "{server}: {ms} ms, {rcode}"},
    "num.web": {
        "en": "{target}: HTTP {status}, first byte {ttfb} ms, total {total} ms",
        "id": "{target}: HTTP {status}, byte pertama {ttfb} ms, total {total} ms",
    },
    "num.none": {"en": "not configured", "id": "tidak diatur"},
    # hints
    "hint.lan_no_route": {
        "en": "This device has no route to a gateway: check the LAN cable or Wi-Fi, and that DHCP gave it an address.",
        "id": "Perangkat ini tidak punya rute ke gateway: periksa kabel LAN atau Wi-Fi, dan apakah DHCP memberi alamat IP.",
    },
    "hint.gateway_down": {
        "en": "The router/gateway does not answer: check its power and the cable to it, then restart it.",
        "id": "Router/gateway tidak menjawab: periksa listrik dan kabel ke router, lalu nyalakan ulang router.",
    },
    "hint.gateway_slow": {
        "en": "The local network is slow or lossy: check Wi-Fi signal and cables between this device and the router.",
        "id": "Jaringan lokal lambat atau banyak paket hilang: periksa sinyal Wi-Fi dan kabel antara perangkat ini dan router.",
    },
    "hint.uplink_down": {
        "en": "The gateway answers but nothing beyond it: check the ONT, VSAT modem or Starlink dish (power, lights, "
        "cables). If they look fine, call the operator's helpdesk: the uplink is down.",
        "id": "Gateway menjawab tetapi tidak ada yang di luar itu: periksa ONT, modem VSAT atau parabola Starlink "
        "(listrik, lampu, kabel). Jika semuanya normal, hubungi helpdesk operator: jalur uplink mati.",
    },
    "hint.fix_gateway_first": {
        "en": "Nothing beyond the gateway can be reached; fix the gateway first.",
        "id": "Tidak ada yang bisa dijangkau di luar gateway; perbaiki gateway lebih dulu.",
    },
    "hint.internet_down": {
        "en": "No public target answers: check the modem/ONT/dish, then call the operator.",
        "id": "Tidak ada target publik yang menjawab: periksa modem/ONT/parabola, lalu hubungi operator.",
    },
    "hint.internet_lossy": {
        "en": "The uplink works but loses {loss}% of packets or is slow ({rtt} ms): tell the operator these numbers.",
        "id": "Uplink berfungsi tetapi {loss}% paket hilang atau lambat ({rtt} ms): sampaikan angka ini ke operator.",
    },
    "hint.dns_local_broken": {
        "en": "The local DNS resolver fails but public DNS works: set the router's DNS to 1.1.1.1 or 8.8.8.8.",
        "id": "DNS lokal gagal tetapi DNS publik berfungsi: atur DNS router ke 1.1.1.1 atau 8.8.8.8.",
    },
    "hint.dns_down": {
        "en": "Internet by IP works but names cannot be resolved: check the DNS settings of the router and this device.",
        "id": "Internet lewat IP berfungsi tetapi nama tidak bisa diterjemahkan: periksa pengaturan DNS router dan perangkat ini.",
    },
    "hint.dns_no_internet": {
        "en": "DNS fails because the internet is down; fix that first.",
        "id": "DNS gagal karena internet mati; perbaiki itu lebih dulu.",
    },
    "hint.dns_slow": {
        "en": "DNS answers slowly ({ms} ms): a public resolver may be faster.",
        "id": "DNS menjawab lambat ({ms} ms): resolver publik mungkin lebih cepat.",
    },
    "hint.site_down": {
        "en": "The internet works but this site does not answer properly: the problem is that one site, not the link.",
        "id": "Internet berfungsi tetapi situs ini tidak menjawab dengan benar: masalahnya di situs itu, bukan di jaringan.",
    },
    "hint.web_needs_dns": {
        "en": "The web check failed because names cannot be resolved; fix DNS first.",
        "id": "Pemeriksaan web gagal karena nama tidak bisa diterjemahkan; perbaiki DNS lebih dulu.",
    },
    "hint.web_no_internet": {
        "en": "The web check failed because the internet is down.",
        "id": "Pemeriksaan web gagal karena internet mati.",
    },
    "hint.cert_expiring": {
        "en": "The site's certificate expires in {days} days.",
        "id": "Sertifikat situs ini habis dalam {days} hari.",
    },
    "hint.healthy": {"en": "Everything answers normally.", "id": "Semua menjawab dengan normal."},
    # throughput (agent.throughput.diagnose_check)
    "check.throughput": {"en": "Throughput", "id": "Kecepatan"},
    "num.throughput": {
        "en": "down {down} Mbit/s, up {up} Mbit/s, {mb} MB used",
        "id": "unduh {down} Mbit/s, unggah {up} Mbit/s, terpakai {mb} MB",
    },
    "num.bufferbloat": {
        "en": "latency idle {idle} ms, under load {loaded} ms (grade {grade})",
        "id": "latensi saat diam {idle} ms, saat sibuk {loaded} ms (nilai {grade})",
    },
    "num.throughput_failed": {"en": "{why}", "id": "{why}"},
    "hint.bufferbloat": {
        "en": "Latency rises by {ms} ms while the link is busy (bufferbloat): calls break whenever someone "
        "downloads. Ask the operator to shorten the modem's queue (SQM/AQM).",
        "id": "Latensi naik {ms} ms saat jaringan sibuk (bufferbloat): panggilan terputus setiap ada yang "
        "mengunduh. Minta operator memperpendek antrean modem (SQM/AQM).",
    },
    "hint.throughput_budget": {
        "en": "The speed test was skipped to stay within the data budget ([throughput] in the config).",
        "id": "Tes kecepatan dilewati agar kuota data tidak terlampaui ([throughput] di konfigurasi).",
    },
    "hint.throughput_failed": {
        "en": "The speed test server {server} did not answer properly: check that it is running.",
        "id": "Server tes kecepatan {server} tidak menjawab dengan benar: periksa apakah server itu berjalan.",
    },
    "hint.throughput_needs_internet": {
        "en": "No speed test while the internet is down.",
        "id": "Tidak ada tes kecepatan selama internet mati.",
    },
    "progress.throughput": {
        "en": "Measuring {direction}: {mbps} Mbit/s ({secs} s)",
        "id": "Mengukur {direction}: {mbps} Mbit/s ({secs} d)",
    },
    "dir.download": {"en": "download", "id": "unduhan"},
    "dir.upload": {"en": "upload", "id": "unggahan"},
    # the regency's fleet view (netprobe fleet)
    "fleet.title": {"en": "netprobe fleet: {kabupaten}", "id": "Armada netprobe: {kabupaten}"},
    "fleet.generated": {"en": "Generated {time} UTC", "id": "Dibuat {time} UTC"},
    "fleet.blankspot": {
        "en": "Bebas blankspot: {share}% of desa have working internet ({reachable} of {total})",
        "id": "Bebas blankspot: {share}% desa punya internet yang berfungsi ({reachable} dari {total})",
    },
    "fleet.dark_note": {
        "en": "Dark: offline, silent, or nothing beyond the gateway answers.",
        "id": "Gelap: luring, diam, atau tidak ada yang menjawab di luar gateway.",
    },
    "fleet.kecamatan_summary": {"en": "Kecamatan summary", "id": "Ringkasan per kecamatan"},
    "fleet.nodes": {"en": "Nodes", "id": "Node"},
    "fleet.none": {"en": "No nodes have reported yet.", "id": "Belum ada node yang melapor."},
    "fleet.rejected": {"en": "Rejected messages: {counts}", "id": "Pesan ditolak: {counts}"},
    "fleet.never": {"en": "never", "id": "belum pernah"},
    "fleet.col.kecamatan": {"en": "Kecamatan", "id": "Kecamatan"},
    "fleet.col.desa": {"en": "Desa", "id": "Desa"},
    "fleet.col.node": {"en": "Node", "id": "Node"},
    "fleet.col.nodes": {"en": "Nodes", "id": "Node"},
    "fleet.col.reachable": {"en": "Reachable", "id": "Terjangkau"},
    "fleet.col.dark": {"en": "Dark", "id": "Gelap"},
    "fleet.col.share": {"en": "Bebas blankspot", "id": "Bebas blankspot"},
    "fleet.col.links": {"en": "Link types", "id": "Jenis jaringan"},
    "fleet.col.state": {"en": "State", "id": "Status"},
    "fleet.col.link": {"en": "Link", "id": "Jaringan"},
    "fleet.col.latency": {"en": "Latency p50", "id": "Latensi p50"},
    "fleet.col.loss": {"en": "Loss", "id": "Paket hilang"},
    "fleet.col.speed": {"en": "Down / up (Mbit/s)", "id": "Unduh / unggah (Mbit/s)"},
    "fleet.col.data": {"en": "Data this month", "id": "Data bulan ini"},
    "fleet.col.gaps": {"en": "Gaps", "id": "Celah urutan"},
    "fleet.col.last_seen": {"en": "Last seen", "id": "Terakhir terlihat"},
    "fleet.state.online": {"en": "online", "id": "daring"},
    "fleet.state.offline": {"en": "offline", "id": "luring"},
    "fleet.state.silent": {"en": "silent", "id": "diam"},
    "fleet.uplink.gateway_only": {"en": "gateway only", "id": "hanya gateway"},
    "fleet.link.unknown": {"en": "unknown", "id": "tidak diketahui"},
    "fleet.chart.latency": {
        "en": "Latency to public targets, last 24 h (ms)",
        "id": "Latensi ke target publik, 24 jam terakhir (ms)",
    },
    "fleet.chart.loss": {"en": "Loss, last 24 h (%)", "id": "Paket hilang, 24 jam terakhir (%)"},
    "fleet.chart.kecamatan": {
        "en": "Desa reachable and dark, per kecamatan",
        "id": "Desa terjangkau dan gelap, per kecamatan",
    },
    "fleet.map": {"en": "Nodes on the map", "id": "Peta node"},
}


def text(key: str, lang: str = "en", **params: Any) -> str:
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    template = entry.get(lang) or entry["en"]
    return template.format(**params)
