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
    "check.gateway": {"en": "Gateway", "id": "Gateway"},
    "check.internet": {"en": "Internet", "id": "Internet"},
    "check.dns": {"en": "DNS", "id": "DNS"},
    "check.web": {"en": "Web", "id": "Web"},
    # link type (agent.diagnose.link); evidence keys are "link.ev.<rule>" of agent.linktype.classify
    "check.link": {"en": "Link", "id": "Jaringan"},
    "link.verdict": {
        "en": "{link_type} (confidence {confidence}; access {access}, backhaul {backhaul})",
        "id": "{link_type} (keyakinan {confidence}; akses {access}, backhaul {backhaul})",
    },
    "link.skipped_down": {
        "en": "not checked: the uplink is down",
        "id": "tidak diperiksa: uplink mati",
    },
    "link.failed": {"en": "no verdict: {why}", "id": "tidak ada hasil: {why}"},
    "link.no_time": {
        "en": "not checked: the other checks used up the 20 s",
        "id": "tidak diperiksa: pemeriksaan lain sudah memakai 20 detik",
    },
    "link.brief_look": {
        "en": "A {seconds} s look: GEO and fiber show at once; LEO and cellular need the node's longer look "
        "(every few hours, in its link readings).",
        "id": "Pengamatan {seconds} detik: GEO dan fiber langsung terlihat; LEO dan seluler perlu pengamatan "
        "lebih lama oleh node (tiap beberapa jam, di data link-nya).",
    },
    "link.ev.geo_floor": {
        "en": "idle minimum {min_ms} ms >= 450 ms over {n} samples: GEO (physics floor 477.5 ms)",
        "id": "minimum saat sepi {min_ms} ms >= 450 ms dari {n} sampel: GEO (batas fisika 477,5 ms)",
    },
    "link.ev.dish_api": {
        "en": "Starlink dish API answers at {address}",
        "id": "API parabola Starlink menjawab di {address}",
    },
    "link.ev.not_a_dish": {
        "en": "{address} answers but not as a Starlink dish (a cable modem?)",
        "id": "{address} menjawab tetapi bukan parabola Starlink (modem kabel?)",
    },
    "link.ev.starlink_hops": {
        "en": "hops {hop} -> {next}: the Starlink pattern",
        "id": "hop {hop} -> {next}: pola Starlink",
    },
    "link.ev.wwan_interface": {
        "en": "default route on {iface} ({driver}, {devtype}): a cellular modem",
        "id": "rute utama lewat {iface} ({driver}, {devtype}): modem seluler",
    },
    "link.ev.usb_modem_hint": {
        "en": "default route on {iface} ({driver}): maybe a USB modem",
        "id": "rute utama lewat {iface} ({driver}): mungkin modem USB",
    },
    "link.ev.operator": {
        "en": "operator {operator} ({match})",
        "id": "operator {operator} ({match})",
    },
    "link.ev.leo_steps": {
        "en": "RTT steps of {step_ms} ms at UTC :12/:27/:42/:57 (score {score}, {boundaries} boundaries)",
        "id": "lompatan RTT {step_ms} ms pada UTC :12/:27/:42/:57 (skor {score}, {boundaries} batas)",
    },
    "link.ev.leo_steps_unsynced": {
        "en": "15-s RTT steps of {step_ms} ms near :12 (clock not synced; score {score})",
        "id": "lompatan RTT 15 detik {step_ms} ms dekat :12 (jam belum sinkron; skor {score})",
    },
    "link.ev.steps_off_phase": {
        "en": "15-s RTT steps of {step_ms} ms at phase {phase_s} s (clock not synced; score {score})",
        "id": "lompatan RTT 15 detik {step_ms} ms pada fase {phase_s} detik (jam belum sinkron; skor {score})",
    },
    "link.ev.loss_at_boundaries": {
        "en": "{losses} losses, {share} of them at the 15-s boundaries",
        "id": "{losses} paket hilang, {share} di antaranya pada batas 15 detik",
    },
    "link.ev.idle_promotion": {
        "en": "first packet after silence +{delta_ms} ms ({hits}/{trials} trials): radio wake-up",
        "id": "paket pertama setelah sepi +{delta_ms} ms ({hits}/{trials} percobaan): radio bangun",
    },
    "link.ev.no_idle_promotion": {
        "en": "no radio wake-up delay ({delta_ms} ms, {hits}/{trials} trials)",
        "id": "tidak ada jeda radio bangun ({delta_ms} ms, {hits}/{trials} percobaan)",
    },
    "link.ev.flat_short_access": {
        "en": "access delay {access_ms} ms, flat (IQR {iqr_ms} ms): fiber",
        "id": "jeda akses {access_ms} ms, stabil (IQR {iqr_ms} ms): fiber",
    },
    "link.ev.flat_fixed_offset": {
        "en": "access delay {access_ms} ms, flat (IQR {iqr_ms} ms): DSL or cable",
        "id": "jeda akses {access_ms} ms, stabil (IQR {iqr_ms} ms): DSL atau kabel",
    },
    "link.ev.scheduler_jitter": {
        "en": "access delay {access_ms} ms with {iqr_ms} ms IQR jitter: radio scheduling",
        "id": "jeda akses {access_ms} ms dengan jitter IQR {iqr_ms} ms: penjadwalan radio",
    },
    "link.ev.wireless_fixed": {
        "en": "access delay {access_ms} ms, IQR {iqr_ms} ms: cable or fixed wireless",
        "id": "jeda akses {access_ms} ms, IQR {iqr_ms} ms: kabel atau nirkabel tetap",
    },
    "link.ev.long_access": {
        "en": "access delay {access_ms} ms: long, but below GEO",
        "id": "jeda akses {access_ms} ms: panjang, tetapi di bawah GEO",
    },
    "link.ev.access": {
        "en": "access delay {access_ms} ms, IQR {iqr_ms} ms",
        "id": "jeda akses {access_ms} ms, IQR {iqr_ms} ms",
    },
    "link.ev.satellite_backhaul": {
        "en": "cellular here, {backhaul} satellite behind the tower",
        "id": "seluler di sini, satelit {backhaul} di belakang menara",
    },
    "link.ev.two_links": {
        "en": "two links: {first} (~{low_ms} ms) and {second} (~{high_ms} ms)",
        "id": "dua jalur: {first} (~{low_ms} ms) dan {second} (~{high_ms} ms)",
    },
    "link.ev.no_replies": {"en": "no replies from the ISP hop", "id": "hop ISP tidak menjawab"},
    "link.ev.no_idle_samples": {
        "en": "the link was busy the whole time: no idle samples",
        "id": "jaringan sibuk sepanjang waktu: tidak ada sampel saat sepi",
    },
    "link.ev.nearby_target": {
        "en": "the ISP hop did not answer: a nearby target stood in",
        "id": "hop ISP tidak menjawab: target terdekat dipakai sebagai gantinya",
    },
    "link.ev.vpn": {
        "en": "default route through a tunnel ({iface}): operator hints ignored",
        "id": "rute utama lewat tunnel ({iface}): petunjuk operator diabaikan",
    },
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
    # throughput (agent.diagnose.throughput)
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
