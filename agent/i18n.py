"""Words for the technician, in English and Bahasa Indonesia.

Keys are stable; the text may be improved freely. Every key must exist in
both languages (a test checks it), and placeholders must match.
"""

from __future__ import annotations

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
        "en": "15-s RTT steps of {step_ms} ms at phase {phase_s} s, not Starlink's :12 (clock synced)",
        "id": "lompatan RTT 15 detik {step_ms} ms pada fase {phase_s} detik, bukan :12 Starlink (jam sinkron)",
    },
    "link.ev.leo_period": {
        "en": "RTT steps of {step_ms} ms every 15 s, found without the clock ({boundaries} boundaries)",
        "id": "lompatan RTT {step_ms} ms tiap 15 detik, ditemukan tanpa jam ({boundaries} batas)",
    },
    "link.ev.leo_phase": {
        "en": "the steps fall at UTC :12/:27/:42/:57 (clock synced)",
        "id": "lompatan jatuh pada UTC :12/:27/:42/:57 (jam sinkron)",
    },
    "link.ev.cgnat_hop": {
        "en": "carrier-grade NAT hop {hop}: a mobile core?",
        "id": "hop NAT operator {hop}: inti jaringan seluler?",
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
    "fleet.link.backup": {"en": "on its backup link", "id": "memakai jalur cadangan"},
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
    "optional.missing": {
        "en": "Not installed: {module} ({enables}). To add it: {install}",
        "id": "Belum terpasang: {module} ({enables}). Untuk menambahkannya: {install}",
    },
    "optional.scapy": {"en": "the path probe: traceroute, path MTU", "id": "probe jalur: traceroute, MTU jalur"},
    "optional.speedtest": {"en": "the speedtest throughput backend", "id": "backend throughput speedtest"},
    # netprobe web (agent.collector.web) and the month report (agent.collector.report)
    "web.title": {"en": "Internet in {kabupaten}: live view", "id": "Internet di {kabupaten}: pantauan langsung"},
    "web.nav.overview": {"en": "Overview", "id": "Ringkasan"},
    "web.nav.sla": {"en": "SLA", "id": "SLA"},
    "web.footer": {
        "en": "netprobe web · generated {time} {zone} · read-only",
        "id": "netprobe web · dibuat {time} {zone} · hanya baca",
    },
    "web.state.online": {"en": "online", "id": "daring"},
    "web.state.gateway_only": {"en": "dark: gateway only", "id": "gelap: hanya gateway"},
    "web.state.offline": {"en": "dark: offline", "id": "gelap: luring"},
    "web.state.silent": {"en": "dark: silent", "id": "gelap: diam"},
    "web.status.up": {"en": "internet", "id": "ada internet"},
    "web.status.down": {"en": "no internet", "id": "tanpa internet"},
    "web.status.unknown": {"en": "no evidence", "id": "tanpa data"},
    "web.status.off": {"en": "power off", "id": "listrik padam"},
    "web.status.maintenance": {"en": "maintenance", "id": "pemeliharaan"},
    "web.col.month_availability": {"en": "Availability this month", "id": "Ketersediaan bulan ini"},
    "web.dark.title": {"en": "Dark now ({n} nodes)", "id": "Gelap saat ini ({n} node)"},
    "web.dark.none": {"en": "No node is dark.", "id": "Tidak ada node yang gelap."},
    "web.dark.more": {
        "en": "… and {n} more: see the kecamatan pages.",
        "id": "… dan {n} lagi: lihat halaman kecamatan.",
    },
    "web.incidents.open": {"en": "Open incidents", "id": "Gangguan yang masih terbuka"},
    "web.incidents.recent": {"en": "Incidents, last 30 days", "id": "Gangguan, 30 hari terakhir"},
    "web.incidents.not_available": {
        "en": "Incidents: not available (the incidents engine is not installed).",
        "id": "Gangguan: tidak tersedia (mesin gangguan belum terpasang).",
    },
    "web.incidents.none": {"en": "None.", "id": "Tidak ada."},
    "web.incidents.ongoing": {"en": "ongoing", "id": "masih berlangsung"},
    "web.incidents.col.node": {"en": "Node", "id": "Node"},
    "web.incidents.col.kind": {"en": "Kind", "id": "Jenis"},
    "web.incidents.col.start": {"en": "Started", "id": "Mulai"},
    "web.incidents.col.stop": {"en": "Ended", "id": "Selesai"},
    "web.incidents.col.summary": {"en": "What", "id": "Keterangan"},
    "web.map.title": {"en": "Map", "id": "Peta"},
    "web.map.none": {
        "en": "No node has reported a position (site.lat, site.lon).",
        "id": "Belum ada node yang melaporkan posisi (site.lat, site.lon).",
    },
    "web.map.note": {
        "en": "Nodes at their site.lat/lon, over the regency's boundary file ([web] boundary_file) when one is set. "
        "Nothing is fetched from outside.",
        "id": "Node pada site.lat/lon masing-masing, di atas batas wilayah kabupaten ([web] boundary_file) bila "
        "diatur. Tidak ada yang diambil dari luar.",
    },
    "web.kecamatan.title": {"en": "Kecamatan {kecamatan}", "id": "Kecamatan {kecamatan}"},
    "web.kecamatan.headline": {
        "en": "{share}% of desa have working internet ({reachable} of {total})",
        "id": "{share}% desa punya internet yang berfungsi ({reachable} dari {total})",
    },
    "web.node.title": {"en": "{desa}, {kecamatan}", "id": "{desa}, {kecamatan}"},
    "web.node.operator": {"en": "Provider", "id": "Penyedia"},
    "web.node.contract_speed": {"en": "Contracted speed", "id": "Kecepatan kontrak"},
    "web.node.verdict": {"en": "Last diagnosis", "id": "Diagnosis terakhir"},
    "web.node.verdict_at": {"en": "From the readings of {time}.", "id": "Dari data pukul {time}."},
    "web.node.no_verdict": {"en": "No recent readings to judge from.", "id": "Belum ada data terbaru untuk dinilai."},
    "web.node.history": {"en": "History", "id": "Riwayat"},
    "web.node.history_building": {
        "en": "The 7- and 30-day history is still being built; the last 24 h is shown from the readings.",
        "id": "Riwayat 7 dan 30 hari masih disusun; 24 jam terakhir ditampilkan langsung dari data.",
    },
    "web.node.availability": {
        "en": "Internet {avail} of the measured time; no evidence for {unknown} of the range; power off {off} min; "
        "maintenance {maintenance} min.",
        "id": "Internet tersedia {avail} dari waktu terukur; tanpa data {unknown} dari rentang ini; listrik padam "
        "{off} menit; pemeliharaan {maintenance} menit.",
    },
    "web.node.link_change": {"en": "link type {old} → {new}", "id": "jenis jaringan {old} → {new}"},
    "web.node.link_changes": {"en": "Link type changes", "id": "Perubahan jenis jaringan"},
    "web.node.contract": {"en": "contract {mbps} Mbit/s", "id": "kontrak {mbps} Mbit/s"},
    "web.node.data": {"en": "Data used", "id": "Pemakaian data"},
    "web.node.agent_data": {
        "en": "This node's own traffic this month (measuring and reporting): {used}.",
        "id": "Lalu lintas node ini sendiri bulan ini (pengukuran dan pelaporan): {used}.",
    },
    "web.node.ledger": {
        "en": "The node's own ledger: {mb} MB this month.",
        "id": "Catatan node sendiri: {mb} MB bulan ini.",
    },
    "web.node.no_data_use": {
        "en": "No speed test has used data yet.",
        "id": "Belum ada tes kecepatan yang memakai data.",
    },
    "web.node.month": {"en": "Month", "id": "Bulan"},
    "web.node.bytes": {"en": "Used by tests", "id": "Dipakai tes"},
    "web.range.24h": {"en": "24 hours", "id": "24 jam"},
    "web.range.7d": {"en": "7 days", "id": "7 hari"},
    "web.range.30d": {"en": "30 days", "id": "30 hari"},
    "web.chart.latency": {
        "en": "Latency to public targets (ms): p50, band to p90",
        "id": "Latensi ke target publik (ms): p50, pita sampai p90",
    },
    "web.chart.loss": {"en": "Packet loss (%)", "id": "Paket hilang (%)"},
    "web.chart.throughput": {
        "en": "Throughput (Mbit/s) against the contract",
        "id": "Kecepatan (Mbit/s) dibanding kontrak",
    },
    "web.chart.status": {
        "en": "Status: internet, none, no evidence, power off",
        "id": "Status: ada internet, tanpa internet, tanpa data, listrik padam",
    },
    "web.chart.download": {"en": "download", "id": "unduh"},
    "web.chart.upload": {"en": "upload", "id": "unggah"},
    "web.chart.contract": {"en": "contract", "id": "kontrak"},
    "web.history.building": {
        "en": "History is being built ({done} of {total} nodes); charts beyond 24 h and the SLA follow.",
        "id": "Riwayat sedang disusun ({done} dari {total} node); grafik lebih dari 24 jam dan SLA menyusul.",
    },
    "web.history.error": {
        "en": "History cannot be updated now (see the service log); figures may be old.",
        "id": "Riwayat tidak dapat diperbarui saat ini (lihat log layanan); angka mungkin sudah lama.",
    },
    "web.sla.month": {"en": "Month", "id": "Bulan"},
    "web.sla.show": {"en": "Show", "id": "Tampilkan"},
    "web.sla.download": {"en": "Download", "id": "Unduh"},
    "web.sla.not_begun": {"en": "{month} has not begun.", "id": "{month} belum dimulai."},
    "web.error.401": {"en": "Sign in to see this page.", "id": "Masuk untuk melihat halaman ini."},
    "web.error.404": {"en": "No such page.", "id": "Halaman tidak ditemukan."},
    "web.error.405": {"en": "Only GET and HEAD are served.", "id": "Hanya GET dan HEAD yang dilayani."},
    "web.error.500": {
        "en": "Something went wrong on the server; the details are in its log.",
        "id": "Terjadi kesalahan di server; rinciannya ada di log.",
    },
    "web.error.503": {
        "en": "The database cannot be read now; try again in a minute.",
        "id": "Basis data tidak dapat dibaca saat ini; coba lagi sebentar lagi.",
    },
    "web.error.no_kecamatan": {
        "en": "No nodes in kecamatan '{kecamatan}'.",
        "id": "Tidak ada node di kecamatan '{kecamatan}'.",
    },
    "web.error.no_node": {"en": "No node '{node}'.", "id": "Tidak ada node '{node}'."},
    "sla.title": {
        "en": "Internet availability, {kabupaten}, {month}",
        "id": "Ketersediaan internet, {kabupaten}, {month}",
    },
    "sla.period": {"en": "Period {start} to {stop} ({zone}).", "id": "Periode {start} sampai {stop} ({zone})."},
    "sla.summary": {
        "en": "Available {avail}: {up} of {counted} measured minutes. Not counted: no evidence {unknown} min, "
        "power off {off} min, maintenance {maintenance} min.",
        "id": "Tersedia {avail}: {up} dari {counted} menit terukur. Tidak dihitung: tanpa data {unknown} menit, "
        "listrik padam {off} menit, pemeliharaan {maintenance} menit.",
    },
    "sla.rules": {
        "en": "A minute is available when a public target answered (one reading counts for {evidence} min); power "
        "cuts and maintenance are left out; minutes without evidence are shown apart, never counted for or against "
        "the provider.",
        "id": "Satu menit dihitung tersedia bila target publik menjawab (satu data berlaku {evidence} menit); "
        "listrik padam dan pemeliharaan tidak dihitung; menit tanpa data ditampilkan terpisah, tidak dihitung untuk "
        "maupun melawan penyedia.",
    },
    "sla.power.boots": {"en": "Power cuts: from the nodes' boot ids.", "id": "Listrik padam: dari boot id node."},
    "sla.power.incidents_boots": {
        "en": "Power cuts: from the incidents engine and the boot ids.",
        "id": "Listrik padam: dari mesin gangguan dan boot id.",
    },
    "sla.maintenance": {"en": "Maintenance windows", "id": "Jadwal pemeliharaan"},
    "sla.scope_all": {"en": "every node", "id": "semua node"},
    "sla.by.provider": {"en": "Per provider", "id": "Per penyedia"},
    "sla.by.kecamatan": {"en": "Per kecamatan", "id": "Per kecamatan"},
    "sla.by.desa": {"en": "Per desa", "id": "Per desa"},
    "sla.by.node": {"en": "Per node", "id": "Per node"},
    "sla.col.name": {"en": "Name", "id": "Nama"},
    "sla.col.kecamatan": {"en": "Kecamatan", "id": "Kecamatan"},
    "sla.col.nodes": {"en": "Nodes", "id": "Node"},
    "sla.col.operator": {"en": "Provider", "id": "Penyedia"},
    "sla.col.contract": {"en": "Contract", "id": "Kontrak"},
    "sla.col.shortfall": {"en": "Shortfall", "id": "Kekurangan"},
    "sla.col.availability": {"en": "Available", "id": "Tersedia"},
    "sla.col.up": {"en": "Up (min)", "id": "Ada (menit)"},
    "sla.col.down": {"en": "Down (min)", "id": "Putus (menit)"},
    "sla.col.unknown": {"en": "No evidence (min)", "id": "Tanpa data (menit)"},
    "sla.col.off": {"en": "Power off (min)", "id": "Padam (menit)"},
    "sla.col.maintenance": {"en": "Maintenance (min)", "id": "Pemeliharaan (menit)"},
    "sla.col.p50": {"en": "Latency p50 (ms)", "id": "Latensi p50 (ms)"},
    "sla.col.p95": {"en": "p95 (ms)", "id": "p95 (ms)"},
    "sla.col.loss": {"en": "Loss", "id": "Paket hilang"},
    "sla.col.down_speed": {"en": "Download median (Mbit/s)", "id": "Median unduh (Mbit/s)"},
    "sla.col.contract_speed": {"en": "Contract Mbit/s (reached)", "id": "Kontrak Mbit/s (tercapai)"},
    "sla.met": {"en": "met", "id": "terpenuhi"},
    "sla.short": {"en": "short by {pct} points ({minutes} min)", "id": "kurang {pct} poin ({minutes} menit)"},
    "sla.none": {"en": "(none)", "id": "(tidak ada)"},
    "sla.generated": {"en": "Generated {time}.", "id": "Dibuat {time}."},
}


def lookup(table: dict[str, dict[str, str]], key: str, lang: str, **params: object) -> str:
    """`key` from a feature's own table in `lang` (English when missing); an unknown key as itself."""
    entry = table.get(key)
    if entry is None:
        return key
    template = entry.get(lang) or entry["en"]
    return template.format(**params)


def text(key: str, lang: str = "en", **params: object) -> str:
    return lookup(MESSAGES, key, lang, **params)
