"""A desa on the testbed with the regency beyond its uplink: the agent in the node namespace, Mosquitto and
`netprobe collect` in the server namespace, so everything the agent sends or fetches crosses the emulated
uplink, where the gateway's WAN interface counters see it.

    site = Site(tb, workdir)                   # starts the broker and the collector
    site.start_agent(site.config("default", scale=12))
    before = site.wan_bytes(); ...; site.stop_agent(); after = site.wan_bytes()
    site.ledger()                              # the agent's own account, saved at its stop

`config(profile, scale)` is the node's config with every interval (probe intervals, the batch latency
bound, the status and keepalive periods, the link watcher) divided by `scale`, and the targets of the
profile pointed at the testbed's hosts: the schedule runs `scale` times faster, so its monthly figure is
the run's bytes per second divided by `scale`, times a month (tests/bench/bench_usage.py takes the slope
of two runs, so the one-offs of a start cancel).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from agent.collector.store import open_store
from agent.throughput import budget as ledger
from tests.testbed.bed import ISP_IP, REPO, SERVER_IP, Testbed

BROKER_PORT = 18883  # inside the server namespace: never the system broker
NODE = "muba-sekayu-balai-agung-01"


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


class Site:
    def __init__(self, tb: Testbed, workdir: Path, acks: Optional[dict[str, Any]] = None) -> None:
        self.tb, self.dir = tb, workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = self.dir / "state"
        self.db_path = self.dir / "collector.db"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.start_broker()
        self.start_collector(acks or {})

    # -- processes ---------------------------------------------------------------------------
    def popen(self, name: str, ns: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - the process holds it
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
        log.close()
        self.tb.processes.append(proc)  # the testbed kills it at teardown, whatever happens here
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_log(self, name: str, needle: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log(name):
                return True
            time.sleep(0.1)
        return needle in self.log(name)

    def start_broker(self) -> None:
        conf = self.dir / "mosquitto.conf"
        conf.write_text(f"listener {BROKER_PORT} 0.0.0.0\nallow_anonymous true\npersistence false\nuser root\n"
                        "log_dest stderr\nlog_type all\nmax_queued_messages 100000\n")  # fmt: skip
        self.popen("mosquitto", self.tb.server_ns, [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)])
        assert self.wait_log("mosquitto", "running", 10), self.log("mosquitto")

    def start_collector(self, acks: dict[str, Any]) -> None:
        conf = self.dir / "collector.toml"
        lines = ["[broker]", f'url = "mqtt://127.0.0.1:{BROKER_PORT}"', 'client_id = "collector-site"',
                 "[store]", f'path = "{self.db_path}"', "[fleet]", "interval_s = 5.0", "silent_intervals = 6.0",
                 "[acks]", *(f"{k} = {toml(v)}" for k, v in acks.items())]  # fmt: skip
        conf.write_text("\n".join(lines) + "\n")
        self.popen("collector", self.tb.server_ns, [sys.executable, "-m", "agent", "collect", "-c", str(conf)])
        assert self.wait_log("collector", "subscribed to", 30), self.log("collector")

    def start_agent(self, config_text: str, name: str = "agent") -> None:
        conf = self.dir / f"{name}.toml"
        conf.write_text(config_text)
        self.popen(name, self.tb.node_ns, [sys.executable, "-m", "agent", "-v", "run", "-c", str(conf)])
        assert self.wait_log(name, "running as", 20), self.log(name)

    def stop_agent(self, name: str = "agent", settle: float = 1.0) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
        time.sleep(settle)  # the last FIN and ACKs cross the link
        return int(code)

    # -- what was spent --------------------------------------------------------------------------
    def wan_bytes(self) -> int:
        """Bytes both ways through the gateway's WAN interface (Ethernet frames, as the kernel counts them)."""
        out = self.tb.exec(self.tb.gw_ns, ["cat", "/sys/class/net/wan0/statistics/rx_bytes",
                                           "/sys/class/net/wan0/statistics/tx_bytes"]).stdout.split()  # fmt: skip
        return int(out[0]) + int(out[1])

    def ledger(self) -> ledger.LedgerState:
        return ledger.Ledger(str(self.state)).load()

    def rows(self, measurement: Optional[str] = None) -> list[dict[str, Any]]:
        if not self.db_path.exists():
            return []
        store = open_store(path=str(self.db_path), readonly=True)
        try:
            sql = "SELECT seq, measurement, target, ok, fields FROM readings WHERE node = ?"
            params: list[Any] = [NODE]
            if measurement:
                sql += " AND measurement = ?"
                params.append(measurement)
            out = []
            for seq, m, target, ok, fields in store.query(sql, params):
                out.append({"seq": seq, "measurement": m, "target": target, "ok": bool(ok),
                            "fields": json.loads(fields) if isinstance(fields, (str, bytes)) else fields})  # fmt: skip
            return out
        finally:
            store.close()

    def fleet_view(self, now: Optional[float] = None) -> Any:
        from agent.collector import fleet

        store = open_store(path=str(self.db_path), readonly=True)
        try:
            views = fleet.node_views(store.nodes(), store.latest(), {}, now or time.time(), fleet.Policy(5.0, 6.0))
        finally:
            store.close()
        return next(v for v in views if v.node == NODE)

    # -- the node's config -------------------------------------------------------------------------
    def config(self, profile: str, scale: float = 1.0, link_observe_s: float = 10.0, **sections: dict[str, Any]) -> str:
        """The profile's schedule, every interval divided by `scale`, its targets on the testbed's hosts."""
        from agent.config import DEFAULT_TARGETS
        from agent.usage.profile import METERED_SECTIONS, METERED_TARGETS

        metered = profile == "metered"
        targets = [dict(t) for t in (METERED_TARGETS if metered else DEFAULT_TARGETS)]
        host = {"1.1.1.1": SERVER_IP, "8.8.8.8": ISP_IP, "1.1.1.1:443": f"{SERVER_IP}:7",
                "https://www.google.com/generate_204": f"https://{SERVER_IP}/generate_204"}  # fmt: skip
        probe_defaults = {"icmp": 60.0, "tcp": 60.0, "dns": 300.0, "http": 300.0, "link": 4 * 3600.0}
        for t in targets:
            t["target"] = host.get(t["target"], t["target"])
            if t["kind"] == "dns" and t.get("server") not in (None, "system"):
                t["server"] = SERVER_IP
            if t["kind"] == "http":
                t["ca_file"] = self.tb.ca_file
            t["interval"] = float(t.get("interval", probe_defaults[t["kind"]])) / scale
            if t["kind"] == "link":
                t["observe_s"] = link_observe_s
                t["promo_trials"] = 0
                t["isp_hop"] = ISP_IP
        mqtt = {"keepalive": 60, "batch": True, "batch_s": 120.0, "status_interval": 300.0}
        linktype = {"watch_s": 30.0, "rate_hz": 5.0}
        daemon = {"host_interval": 300.0}
        if metered:
            mqtt.update(METERED_SECTIONS["mqtt"])
            linktype.update({k: v for k, v in METERED_SECTIONS["linktype"].items() if k in linktype})
            daemon.update(METERED_SECTIONS["daemon"])
        mqtt = {**mqtt, "keepalive": max(5, int(mqtt["keepalive"] / scale)), "batch_s": mqtt["batch_s"] / scale,
                "status_interval": mqtt["status_interval"] / scale, "broker": f"mqtt://{SERVER_IP}:{BROKER_PORT}",
                "reconnect_min": 0.5, "reconnect_max": 2.0}  # fmt: skip
        linktype = {**linktype, "watch_s": linktype["watch_s"] / scale, "dish": "", "isp_hop": ISP_IP}
        # splay 0: every target runs at the start, then on its schedule (a one-off the bench's slope cancels)
        daemon = {**daemon, "host_interval": daemon["host_interval"] / scale, "splay": 0.0, "profile": profile}
        tables: dict[str, dict[str, Any]] = {
            "node": {"id": NODE, "state_dir": str(self.state)},
            "site": {"kecamatan": "Sekayu", "desa": "Balai Agung"},
            "daemon": daemon, "mqtt": mqtt, "linktype": linktype,
            "usage": {"reading_interval": 86400.0 / scale},
        }  # fmt: skip
        for name, values in sections.items():
            tables[name] = {**tables.get(name, {}), **values}
        out = []
        for name, values in tables.items():
            out.append(f"[{name}]")
            out += [f"{k} = {toml(v)}" for k, v in values.items()]
        for t in targets:
            out.append("[[targets]]")
            out += [f"{k} = {toml(v)}" for k, v in t.items()]
        return "\n".join(out) + "\n"
