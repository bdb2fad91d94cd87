"""Three desa behind one shared upstream, in network namespaces, with real agents, broker, collector and receivers.

    node0 ── gw0 ─┐
    node1 ── gw1 ─┼── hub ── core: Mosquitto, `netprobe collect`, the public target,
    node2 ── gw2 ─┘          HTTP (webhook, Telegram Bot API, WhatsApp gateway) and SMTP receivers

    node_i eth0 198.51.100.(16i+2)/28 ── gw_i lan0 .(16i+1)      (the desa LAN)
    gw_i wan0 203.0.113.(4i+2)/30 ── hub d_i 203.0.113.(4i+1)     (each desa's uplink)
    hub up0 192.0.2.1/24 ── core eth0 192.0.2.2/24                (the kecamatan hub's upstream)

Each agent is `netprobe run` (icmp to its gateway and to 192.0.2.2 every 0.5 s), started in its
own mount namespace with a file bind-mounted over /proc/sys/kernel/random/boot_id, so a
restart "after a power cut" comes back with a new boot id (agent/clock.py reads it there).
What is emulated how: a desa's uplink dies when its gateway's WAN link goes down (the
gateway keeps answering, nothing beyond it does); the shared upstream dies when the hub's
link to the core goes down; a power cut is the agent killed (SIGKILL: its last will says
offline) and started again with another boot id; `mono_s` (CLOCK_BOOTTIME) is the host's and
keeps counting, which the engine does not need when the boot id changed.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Optional

from tests.testbed import pki
from tests.testbed.bed import own_namespace_name, remove_namespace, run

ROOT = Path(__file__).resolve().parents[2]
CORE_IP, HUB_UP_IP = "192.0.2.2", "192.0.2.1"
HTTP_PORT, HOOK_PORT, SMTP_PORT = 8080, 8081, 2525
DESA = (("Sekayu", "Balai Agung"), ("Sekayu", "Soak Baru"), ("Sekayu", "Kayuara"))
NODES = tuple(f"muba-sekayu-desa-{i}-01" for i in range(3))


def lan(i: int) -> tuple[str, str]:
    return f"198.51.100.{16 * i + 2}", f"198.51.100.{16 * i + 1}"  # node, gateway


def wan(i: int) -> tuple[str, str]:
    return f"203.0.113.{4 * i + 2}", f"203.0.113.{4 * i + 1}"  # gateway, hub


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(v)


class Bed:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        prefix = own_namespace_name("x")[: -len("-x")]
        self.core, self.hub = f"{prefix}-core", f"{prefix}-hub"
        self.gws = [f"{prefix}-gw{i}" for i in range(3)]
        self.nodes = [f"{prefix}-node{i}" for i in range(3)]
        self.namespaces: list[str] = []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.db = self.dir / "collector.db"
        (self.dir / "pki").mkdir(exist_ok=True)
        self.pki = pki.make_pki(CORE_IP, str(self.dir / "pki"))
        self.maintenance: list[dict[str, Any]] = []

    # -- building ---------------------------------------------------------------------------
    def build(self) -> Bed:
        for ns in (self.core, self.hub, *self.gws, *self.nodes):
            run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            self.sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1")
        for ns in (self.hub, *self.gws):
            self.sysctl(ns, "net.ipv4.ip_forward=1")
        self.veth(self.hub, "up0", f"{HUB_UP_IP}/24", self.core, "eth0", f"{CORE_IP}/24")
        for i in range(3):
            (gw_wan, hub_side), (node_ip, gw_lan) = wan(i), lan(i)
            self.veth(self.hub, f"d{i}", f"{hub_side}/30", self.gws[i], "wan0", f"{gw_wan}/30")
            self.veth(self.gws[i], "lan0", f"{gw_lan}/28", self.nodes[i], "eth0", f"{node_ip}/28")
            run(["ip", "-n", self.nodes[i], "route", "add", "default", "via", gw_lan])
            run(["ip", "-n", self.gws[i], "route", "add", "default", "via", hub_side])
            run(["ip", "-n", self.hub, "route", "add", f"198.51.100.{16 * i}/28", "via", gw_wan])
        run(["ip", "-n", self.core, "route", "add", "198.51.100.0/24", "via", HUB_UP_IP])
        run(["ip", "-n", self.core, "route", "add", "203.0.113.0/24", "via", HUB_UP_IP])
        return self

    def sysctl(self, ns: str, setting: str) -> None:
        run(["ip", "netns", "exec", ns, "sysctl", "-qw", setting])

    def veth(self, ns_a: str, dev_a: str, ip_a: str, ns_b: str, dev_b: str, ip_b: str) -> None:
        run(["ip", "-n", ns_a, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b])
        for ns, dev, ip in ((ns_a, dev_a, ip_a), (ns_b, dev_b, ip_b)):
            run(["ip", "-n", ns, "addr", "add", ip, "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])

    def popen(self, name: str, ns: str, argv: list[str], env: Optional[dict[str, str]] = None) -> None:
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - the process holds it
        self.procs[name] = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )  # fmt: skip
        log.close()

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_log(self, name: str, needle: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log(name):
                return True
            time.sleep(0.1)
        return False

    # -- the core's services ----------------------------------------------------------------
    def start_services(self) -> None:
        conf = self.dir / "mosquitto.conf"
        conf.write_text("listener 1883 0.0.0.0\nallow_anonymous true\npersistence false\nuser root\nlog_dest stderr\n")
        self.popen("mosquitto", self.core, [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)])
        self.start_receiver()
        self.start_webhook()
        (self.dir / "telegram.token").write_text("4242:TESTTOKEN\n")
        (self.dir / "hmac.secret").write_text("kunci-rahasia\n")
        (self.dir / "smtp.password").write_text("sandi\n")
        self.start_collector()

    def start_receiver(self) -> None:
        argv = [sys.executable, "-m", "tests.incidents.receivers", "--http", f"{CORE_IP}:{HTTP_PORT}",
                "--smtp", f"{CORE_IP}:{SMTP_PORT}", "--cert", self.pki["cert"], "--key", self.pki["key"],
                "--out", str(self.dir / "got.jsonl")]  # fmt: skip
        self.popen("receiver", self.core, argv)
        assert self.wait_log("receiver", "ready", 20), self.log("receiver")

    def start_webhook(self) -> None:
        argv = [sys.executable, "-m", "tests.incidents.receivers", "--http", f"{CORE_IP}:{HOOK_PORT}",
                "--out", str(self.dir / "hook.jsonl")]  # fmt: skip
        self.popen("webhook", self.core, argv)
        assert self.wait_log("webhook", "ready", 20), self.log("webhook")

    def collector_toml(self) -> str:
        sections: dict[str, dict[str, Any]] = {
            "broker": {"url": "mqtt://127.0.0.1:1883", "client_id": f"collector-{uuid.uuid4().hex[:6]}"},
            "store": {"path": str(self.db)},
            "fleet": {"interval_s": 0.5, "silent_intervals": 4.0},
            "incidents": {
                "interval_s": 1.0, "window": 5, "open_after": 3, "close_after": 4, "gap_s": 3.0, "hold_s": 2.0,
                "cause_settle_s": 20.0, "evaluate_every_s": 0.5, "lookback_s": 900.0, "upstream_together_s": 5.0,
                "maintenance_overrun_s": 0.0,
            },
            "notify": {"retry_min_s": 0.5, "retry_max_s": 2.0, "send_every_s": 0.3, "timeout_s": 3.0},
            "notify.webhook": {"url": f"http://{CORE_IP}:{HOOK_PORT}/hook", "secret_file": str(self.dir / "hmac.secret")},
            "notify.telegram": {"base_url": f"http://{CORE_IP}:{HTTP_PORT}", "token_file": str(self.dir / "telegram.token")},
            "notify.email": {
                "host": CORE_IP, "port": SMTP_PORT, "ca_file": self.pki["ca"], "username": "netprobe",
                "password_file": str(self.dir / "smtp.password"), "from_addr": "netprobe@muba.go.id",
            },
            "notify.whatsapp": {"url": f"http://{CORE_IP}:{HTTP_PORT}/wa"},
        }  # fmt: skip
        out = []
        for name, table in sections.items():
            out.append(f"[{name}]")
            out += [f"{k} = {toml_value(v)}" for k, v in table.items()]
        out += ["[[incidents.groups]]", 'name = "hub-sekayu"', f"nodes = {toml_value(list(NODES))}"]
        for m in self.maintenance:
            out.append("[[maintenance]]")
            out += [f"{k} = {toml_value(v)}" for k, v in m.items()]
        out += ["[[notify.rules]]", 'to = ["webhook", "telegram:-1001", "email:teknisi@muba.go.id", "whatsapp:+62812"]',
                'lang = "id"']  # fmt: skip
        return "\n".join(out) + "\n"

    def start_collector(self) -> None:
        conf = self.dir / "collector.toml"
        conf.write_text(self.collector_toml())
        self.popen("collector", self.core, [sys.executable, "-m", "agent", "collect", "-c", str(conf)])
        assert self.wait_log("collector", "subscribed to", 30), self.log("collector")
        assert self.wait_log("collector", "runs the incident engine", 30), self.log("collector")

    def restart_collector(self) -> None:
        self.stop("collector")
        with open(self.dir / "collector.log", "a") as f:
            f.write("\n--- restarted ---\n")
        self.start_collector()

    # -- agents -----------------------------------------------------------------------------
    def agent_toml(self, i: int) -> str:
        kec, desa = DESA[i]
        state = self.dir / f"agent{i}"
        state.mkdir(exist_ok=True)
        targets = ""
        for target in ("gateway", CORE_IP):
            targets += (f'[[targets]]\nkind = "icmp"\ntarget = "{target}"\ninterval = 0.5\ntimeout = 0.4\n'
                        "count = 2\npacket_interval = 0.05\n")  # fmt: skip
        return (
            f'[node]\nid = "{NODES[i]}"\nstate_dir = "{state}"\n[site]\nkecamatan = "{kec}"\ndesa = "{desa}"\n'
            "[daemon]\nsplay = 0\nhost_interval = 0\n"
            f'[mqtt]\nbroker = "mqtt://{CORE_IP}:1883"\nkeepalive = 5\nreconnect_min = 0.2\nreconnect_max = 1.0\n'
            "batch_s = 0.5\n" + targets  # batches, as by default, but sent well within the collector's 2 s silent time
        )

    def new_boot(self, i: int) -> str:
        boot = str(uuid.uuid4())
        (self.dir / f"boot{i}").write_text(boot + "\n")
        return boot.replace("-", "")[:8]

    def start_agent(self, i: int, new_boot: bool = False) -> None:
        conf = self.dir / f"agent{i}.toml"
        if not conf.exists():
            conf.write_text(self.agent_toml(i))
        if new_boot or not (self.dir / f"boot{i}").exists():
            self.new_boot(i)
        boot_file = self.dir / f"boot{i}"
        script = (
            f"mount --bind {boot_file} /proc/sys/kernel/random/boot_id && exec {sys.executable} -m agent run -c {conf}"
        )
        self.popen(f"agent{i}", self.nodes[i], ["unshare", "-m", "--propagation", "private", "sh", "-c", script])

    def kill_agent(self, i: int) -> None:
        """A power cut, as the broker sees it: the process is gone at once (SIGKILL), its will says offline."""
        self.stop(f"agent{i}", signal.SIGKILL)

    # -- faults -----------------------------------------------------------------------------
    def cut_desa(self, i: int) -> None:
        run(["ip", "-n", self.gws[i], "link", "set", "wan0", "down"])

    def restore_desa(self, i: int) -> None:
        run(["ip", "-n", self.gws[i], "link", "set", "wan0", "up"])
        run(["ip", "-n", self.gws[i], "route", "replace", "default", "via", wan(i)[1]])

    def cut_upstream(self) -> None:
        run(["ip", "-n", self.hub, "link", "set", "up0", "down"])

    def restore_upstream(self) -> None:
        run(["ip", "-n", self.hub, "link", "set", "up0", "up"])
        run(["ip", "-n", self.core, "route", "replace", "198.51.100.0/24", "via", HUB_UP_IP])
        run(["ip", "-n", self.core, "route", "replace", "203.0.113.0/24", "via", HUB_UP_IP])

    # -- what happened ----------------------------------------------------------------------
    def messages(self) -> list[dict[str, Any]]:
        """Every message the receivers got: channel, event, incident id, and the raw record."""
        out = []
        for name in ("got.jsonl", "hook.jsonl"):
            path = self.dir / name
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                item = json.loads(line)
                out.append(describe(item))
        return out

    def destroy(self) -> None:
        for name in list(self.procs):
            self.stop(name, signal.SIGKILL if name.startswith("agent") else signal.SIGTERM)
        for ns in reversed(self.namespaces):
            remove_namespace(ns)
        self.namespaces.clear()


EVENTS = {"GELAP": "open", "PULIH": "resolved", "PENYEBAB DIPERBARUI": "cause"}


def describe(item: dict[str, Any]) -> dict[str, Any]:
    if item["kind"] == "smtp":
        msg = email.message_from_string(item["data"], policy=email.policy.default)
        channel, text = "email", f"{msg['Subject']}\n{msg.get_content()}"
    elif item["path"].startswith("/hook"):
        body = json.loads(item["body"])
        return {"channel": "webhook", "event": body["event"], "incident": body["incident"]["id"],
                "cause": body["incident"]["cause"], "key": item["headers"].get("idempotency-key"), "raw": item}  # fmt: skip
    elif item["path"].startswith("/bot"):
        channel, text = "telegram", json.loads(item["body"])["text"]
    else:
        channel, text = "whatsapp", json.loads(item["body"])["text"]
    subject = re.search(r"\[netprobe\] ([A-Z ]+):", text)
    ident = re.search(r"Insiden (\S+)", text)
    return {"channel": channel, "event": EVENTS.get(subject.group(1) if subject else "", "?"),
            "incident": ident.group(1) if ident else "?", "cause": "", "key": None, "raw": item}  # fmt: skip
