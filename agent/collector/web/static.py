"""What `netprobe web` serves besides its pages: one stylesheet and an icon, from memory.

Why a file and not a <style> block: the Content-Security-Policy allows styles from
'self' only, so no inline style is needed or accepted. Kept small (a few kB) for
a slow office link; the browser caches it.
"""

from __future__ import annotations

COLORS = {
    "online": "#2e7d32",  # has internet
    "gateway_only": "#b71c1c",  # dark: reaches its gateway only
    "offline": "#c62828",  # dark: its last will said so
    "silent": "#ef6c00",  # dark: no reading for too long
    "up": "#2e7d32",
    "down": "#c62828",
    "unknown": "#9e9e9e",
    "off": "#6d4c41",
    "maintenance": "#1565c0",
}

CSS = (
    """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2327;background:#f6f7f7;
font-size:14px;line-height:1.4}
a{color:#0b5394}
header.top{background:#12355b;color:#fff;padding:10px 20px;display:flex;flex-wrap:wrap;align-items:center;gap:8px 24px}
header.top a{color:#fff;text-decoration:none;margin-right:14px} header.top a.on{text-decoration:underline}
header.top .brand{font-weight:700;font-size:17px} header.top nav{flex:1} header.top .lang a{margin:0 0 0 8px}
main{padding:8px 20px 28px;max-width:1280px;margin:0 auto}
section{background:#fff;border-radius:6px;padding:12px 16px;margin:14px 0;box-shadow:0 1px 2px rgba(0,0,0,.08);
overflow:hidden}
h1{font-size:22px;margin:14px 0 6px} h2{font-size:17px;margin:4px 0 10px} h3{font-size:15px;margin:10px 0 6px}
.headline{font-size:24px;font-weight:700;margin:4px 0}
.sub{color:#50575e} .note{font-size:12px;color:#50575e}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{background:#fff;border-radius:6px;padding:10px 14px;min-width:120px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card b{display:block;font-size:22px}
.wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;text-align:left;border-bottom:1px solid #e2e4e7;vertical-align:top}
th{background:#eef1f4;white-space:nowrap} td.num,th.num{text-align:right;white-space:nowrap}
td.id{word-break:break-all;min-width:9em}
tr.dark td:first-child{border-left:4px solid #c62828}
.state{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;white-space:nowrap}
.state-online{background:#2e7d32}.state-offline{background:#c62828}.state-silent{background:#ef6c00}
.state-gateway_only{background:#b71c1c}
.check{display:inline-block;min-width:5em;font-weight:700}
.check-OK{color:#2e7d32}.check-WARN{color:#ef6c00}.check-FAIL{color:#c62828}.check-SKIP{color:#757575}
.ranges a{margin-right:10px} .ranges a.on{font-weight:700;text-decoration:none;color:#1d2327}
.bar{display:inline-block;height:10px;background:#2e7d32;vertical-align:middle}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:0 16px}
svg{max-width:100%;height:auto} svg text{font-size:11px;fill:#333}
svg .axis{stroke:#bbb;stroke-width:1} svg .grid{stroke:#eee;stroke-width:1}
svg .p50{fill:none;stroke:#12355b;stroke-width:1.6} svg .band{fill:#90caf9;opacity:.55}
svg .loss{fill:#ef9a9a} svg .down-line{fill:none;stroke:#1565c0;stroke-width:1.6}
svg .up-line{fill:none;stroke:#8e24aa;stroke-width:1.6} svg .dl{fill:#1565c0} svg .ul{fill:#8e24aa}
svg .contract{stroke:#2e7d32;stroke-width:1.5;stroke-dasharray:6 4}
svg .linkmark{stroke:#6a1b9a;stroke-width:1;stroke-dasharray:3 3}
svg .shade-down{fill:#c62828;opacity:.16} svg .shade-off{fill:#6d4c41;opacity:.16}
svg .shade-unknown{fill:#9e9e9e;opacity:.18} svg .shade-maintenance{fill:#1565c0;opacity:.12}
svg .seg-up{fill:#2e7d32} svg .seg-down{fill:#c62828} svg .seg-unknown{fill:#bdbdbd} svg .seg-off{fill:#6d4c41}
svg .seg-maintenance{fill:#1565c0}
svg .boundary{fill:#e3ecd9;stroke:#8a9a7b;stroke-width:.8} svg .sea{fill:#eaf2f8}
svg .kec-label{font-size:12px;font-weight:700;fill:#37474f;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg .st-online{fill:#2e7d32;stroke:#2e7d32} svg .st-gateway_only{fill:#b71c1c;stroke:#b71c1c}
svg .st-offline{fill:#c62828;stroke:#c62828} svg .st-silent{fill:#ef6c00;stroke:#ef6c00}
svg circle.node{stroke:#fff;stroke-width:1.2}
svg path.dots{fill:none;stroke-width:5;stroke-linecap:round}
.legend span{margin-right:12px;white-space:nowrap} .sw{display:inline-block;width:10px;height:10px;border-radius:5px;
margin-right:4px;vertical-align:middle}
.sw-online,.sw-up{background:#2e7d32}.sw-gateway_only{background:#b71c1c}.sw-offline,.sw-down{background:#c62828}
.sw-silent{background:#ef6c00}.sw-unknown{background:#bdbdbd}.sw-off{background:#6d4c41}.sw-maintenance{background:#1565c0}
.sw-dl{background:#1565c0}.sw-ul{background:#8e24aa}.sw-band{background:#90caf9;border-radius:0}.sw-p50{background:#12355b;border-radius:0;height:3px}
form.inline{display:inline} input,button{font:inherit}
footer{padding:10px 20px 24px;color:#50575e;font-size:12px;text-align:center}
.report-only{display:none}
@media (max-width:700px){main{padding:4px 8px}section{padding:10px}.grid2{grid-template-columns:1fr}}
"""
    + "@page{size:A4;margin:12mm}\n"
    + "@media print{header.top,footer,nav,.noprint{display:none}body{background:#fff;font-size:10pt}"
    "section{box-shadow:none;padding:0;margin:8px 0;overflow:visible}main{padding:0;max-width:none}"
    "table{font-size:8.5pt}th,td{padding:2px 4px}tr{break-inside:avoid}h2{break-after:avoid}"
    ".report-only{display:block}}\n"
)

ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#12355b"/>'
    '<path d="M3 11l3-4 3 2 4-5" fill="none" stroke="#fff" stroke-width="1.8"/></svg>'
)

FILES = {
    "/static/web.css": ("text/css; charset=utf-8", CSS.encode()),
    "/static/icon.svg": ("image/svg+xml", ICON.encode()),
}
