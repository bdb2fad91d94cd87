"""Builds and tears down one testbed: five network namespaces, the link emulator and the servers.

    node ──lan── gw ══ router (link emulator, tbf) ══ isp ──── server
    .2   198.51.100.0/24  .1  203.0.113.2/28  (L2 bridge)  .1  .17  203.0.113.16/28  .18

The router namespace is a transparent L2 bridge, as a modem or dish in bridge mode is, so the
node's traceroute shows the gateway, one ISP hop and then the server. gw and isp know each
other's MAC statically and IPv6 is off everywhere, so the only frames crossing the emulator are
the ones a test sends (its RNG sequence, and so its loss pattern, is reproducible by seed).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import IO, Any, Optional

from tests.testbed import pki
from tests.testbed.profiles import Direction, Profile, profile_to_dict

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NETNS_ETC = "/etc/netns"
NAME_RE = re.compile(r"^nptb(\d+)n\d+-")
PORTS = {"tcp": 7, "dns": 53, "http": 80, "https": 443}

NODE_IP, GATEWAY_IP, LAN_PREFIX = "198.51.100.2", "198.51.100.1", 24
GW_WAN_IP, ISP_IP, WAN_PREFIX = "203.0.113.2", "203.0.113.1", 28
ISP_DOWN_IP, SERVER_IP = "203.0.113.17", "203.0.113.18"
GW_WAN_MAC, ISP_UP_MAC = "02:4e:50:00:00:02", "02:4e:50:00:00:01"
NO_OFFLOADS = ["tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off"]

_counter = 0
_live: list[Testbed] = []


class CommandFailed(subprocess.CalledProcessError):
    """A CalledProcessError whose message carries the command's stderr."""

    def __str__(self) -> str:
        return f"{' '.join(self.cmd)} exited {self.returncode}: {(self.stderr or '').strip()}"


def run(argv: list[str], timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise CommandFailed(result.returncode, argv, result.stdout, result.stderr)
    return result


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_namespace(ns: str) -> None:
    """Kill what still runs inside one of our namespaces, then delete it and its /etc/netns dir."""
    pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    run(["ip", "netns", "del", ns], check=False)
    shutil.rmtree(os.path.join(NETNS_ETC, ns), ignore_errors=True)


def remove_stale_namespaces() -> None:
    """Testbed namespaces left by a test process that was killed before its teardown ran."""
    listing = run(["ip", "netns", "list"], check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        match = NAME_RE.match(name)
        if match and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
            remove_namespace(name)


def read_line(stream: IO[str], timeout: float, what: str) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise RuntimeError(f"{what}: no answer within {timeout:g} s")
    line = stream.readline()
    if not line:
        raise RuntimeError(f"{what}: the process ended")
    return line.strip()


def tbf_args(d: Direction) -> list[str]:
    rate_bytes = (d.rate_mbit or 0) * 1e6 / 8
    burst = int(max(4 * 1514, rate_bytes * 0.001))
    limit = int(max(burst + 1514, rate_bytes * d.queue_ms / 1000.0))
    return ["tbf", "rate", f"{d.rate_mbit}mbit", "burst", str(burst), "limit", str(limit)]


def own_namespace_name(role: str) -> str:
    """A namespace name unique to this process (and recognisable as stale once it has exited)."""
    global _counter
    _counter += 1
    return f"nptb{os.getpid()}n{_counter}-{role}"


class Testbed:
    """One emulated village uplink; README.md "## Testbed" describes it."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, profile: Profile, seed: int = 1, workdir: Optional[str] = None) -> None:
        prefix = own_namespace_name("x")[: -len("-x")]
        self.profile = profile
        self.seed = seed
        self.node_ns, self.gw_ns, self.router_ns, self.isp_ns, self.server_ns = (
            f"{prefix}-{role}" for role in ("node", "gw", "router", "isp", "server")
        )
        self.node_ip, self.gateway_ip, self.isp_ip, self.server_ip = NODE_IP, GATEWAY_IP, ISP_IP, SERVER_IP
        self.ports = dict(PORTS)
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"{prefix}-")
        self.ca_file = ""
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.emulator: Optional[subprocess.Popen] = None
        self.services: Optional[subprocess.Popen] = None

    # ---- the contract ------------------------------------------------------------------------

    def exec(self, ns: str, argv: list[str], timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
        return run(["ip", "netns", "exec", ns, *argv], timeout=timeout, check=check)

    def popen(self, ns: str, argv: list[str], **kw: Any) -> subprocess.Popen:
        """A process inside `ns`; it is killed at teardown. `ip netns exec` execs, so the pid is argv's."""
        kw.setdefault("cwd", REPO)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)
        self.processes.append(proc)
        return proc

    def agent(self, argv: list[str], timeout: float = 60, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess:
        """`python -m agent ARGV` inside the node namespace, with this interpreter (the venv's),
        run through `prefix` (e.g. setpriv) if given."""
        argv = ["ip", "netns", "exec", self.node_ns, *prefix, sys.executable, "-m", "agent", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO)

    def set_profile(self, profile: Profile) -> None:
        """Reconfigure the emulator, the shaping and the resolver live."""
        assert self.emulator is not None and self.services is not None, "the testbed is not built"
        self.ask(self.emulator, {"profile": profile_to_dict(profile)}, "link emulator")
        self.ask(self.services, {"dns_broken": profile.dns_broken}, "server services")
        self.shape(profile)
        self.profile = profile

    # ---- additions -----------------------------------------------------------------------------

    def agent_json(self, argv: list[str], timeout: float = 60, prefix: Sequence[str] = ()) -> dict[str, Any]:
        """Run the agent with --json and parse what it printed; a failure shows its stderr."""
        result = self.agent([*argv, "--json"], timeout, prefix)
        try:
            return dict(json.loads(result.stdout))
        except ValueError:
            raise AssertionError(f"agent {argv} exited {result.returncode}: {result.stderr.strip()}") from None

    def traffic(self, ns: str, pattern: str, pps: float = 50.0, size: int = 1000) -> subprocess.Popen:
        """Busy village traffic (tests/testbed/traffic.py) from `ns` to the server until teardown."""
        argv = [sys.executable, "-m", "tests.testbed.traffic", "--to", SERVER_IP, "--pattern", pattern]
        argv += ["--pps", str(pps), "--size", str(size)]
        return self.popen(ns, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def emulator_stats(self) -> dict[str, int]:
        assert self.emulator is not None
        return dict(json.loads(self.ask(self.emulator, {"stats": True}, "link emulator")))

    def ping(self, ns: str, target: str, count: int, interval: float, timeout: float = 60) -> list[float]:
        """RTTs in ms measured by iputils ping, the trusted peer, one per reply."""
        out = self.exec(ns, ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "2", target],
                        timeout=timeout, check=False).stdout  # fmt: skip
        return [float(m) for m in re.findall(r"time=([\d.]+) ms", out)]

    # ---- building ------------------------------------------------------------------------------

    def build(self) -> Testbed:
        if not _live:
            remove_stale_namespaces()
        _live.append(self)
        paths = pki.make_pki(SERVER_IP)
        self.ca_file = paths["ca"]
        self.make_namespaces()
        self.make_links()
        self.shape(self.profile)
        os.makedirs(os.path.join(NETNS_ETC, self.node_ns), exist_ok=True)
        with open(os.path.join(NETNS_ETC, self.node_ns, "resolv.conf"), "w") as f:
            f.write(f"nameserver {SERVER_IP}\noptions timeout:1 attempts:2\n")
        self.start_emulator()
        self.start_services(paths)
        return self

    def make_namespaces(self) -> None:
        for ns in (self.node_ns, self.gw_ns, self.router_ns, self.isp_ns, self.server_ns):
            run(["ip", "netns", "add", ns])
            self.namespaces.append(ns)
            settings = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
            if ns in (self.gw_ns, self.isp_ns):
                settings += ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0"]
            self.exec(ns, ["sysctl", "-qw", *settings])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])

    def make_links(self) -> None:
        node, gw, router, isp, server = self.node_ns, self.gw_ns, self.router_ns, self.isp_ns, self.server_ns
        steps = [
            [node, "link", "add", "eth0", "type", "veth", "peer", "name", "lan0", "netns", gw],
            [gw, "link", "add", "wan0", "address", GW_WAN_MAC, "type", "veth", "peer", "name", "lan0", "netns", router],
            [router, "link", "add", "wan0", "type", "veth", "peer", "name", "up0", "address", ISP_UP_MAC, "netns", isp],
            [isp, "link", "add", "down0", "type", "veth", "peer", "name", "eth0", "netns", server],
            [node, "addr", "add", f"{NODE_IP}/{LAN_PREFIX}", "dev", "eth0"],
            [gw, "addr", "add", f"{GATEWAY_IP}/{LAN_PREFIX}", "dev", "lan0"],
            [gw, "addr", "add", f"{GW_WAN_IP}/{WAN_PREFIX}", "dev", "wan0"],
            [isp, "addr", "add", f"{ISP_IP}/{WAN_PREFIX}", "dev", "up0"],
            [isp, "addr", "add", f"{ISP_DOWN_IP}/{WAN_PREFIX}", "dev", "down0"],
            [server, "addr", "add", f"{SERVER_IP}/{WAN_PREFIX}", "dev", "eth0"],
        ]
        for ns, dev in ((node, "eth0"), (gw, "lan0"), (gw, "wan0"), (router, "lan0"), (router, "wan0"),
                        (isp, "up0"), (isp, "down0"), (server, "eth0")):  # fmt: skip
            steps.append([ns, "link", "set", dev, "up"])
        steps += [
            [node, "route", "add", "default", "via", GATEWAY_IP],
            [gw, "route", "add", "default", "via", ISP_IP],
            [isp, "route", "add", f"198.51.100.0/{LAN_PREFIX}", "via", GW_WAN_IP],
            [server, "route", "add", "default", "via", ISP_DOWN_IP],
            [gw, "neigh", "replace", ISP_IP, "lladdr", ISP_UP_MAC, "dev", "wan0", "nud", "permanent"],
            [isp, "neigh", "replace", GW_WAN_IP, "lladdr", GW_WAN_MAC, "dev", "up0", "nud", "permanent"],
        ]
        for ns, *argv in steps:
            run(["ip", "-n", ns, *argv])
        # Frames re-injected by the emulator must carry full checksums and be no larger than the MTU.
        for ns, dev in ((gw, "wan0"), (router, "lan0"), (router, "wan0"), (isp, "up0")):
            self.exec(ns, ["ethtool", "-K", dev, *NO_OFFLOADS])

    def shape(self, profile: Profile) -> None:
        """tbf on the router's egress: down leaves towards the gateway (lan0), up towards the ISP (wan0)."""
        for dev, direction in (("lan0", profile.down), ("wan0", profile.up)):
            if direction.rate_mbit:
                run(["tc", "-n", self.router_ns, "qdisc", "replace", "dev", dev, "root", *tbf_args(direction)])
            else:
                run(["tc", "-n", self.router_ns, "qdisc", "del", "dev", dev, "root"], check=False)

    def log_file(self, name: str) -> IO[str]:
        return open(os.path.join(self.workdir, f"{name}.log"), "w")

    def start_emulator(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "tests.testbed.linkemu",
            "--lan",
            "lan0",
            "--wan",
            "wan0",
            "--seed",
            str(self.seed),
        ]
        with self.log_file("linkemu") as log_f:
            self.emulator = self.popen(self.router_ns, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=log_f, text=True, bufsize=1)  # fmt: skip
        try:
            self.ask(self.emulator, {"profile": profile_to_dict(self.profile)}, "link emulator")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; its log: {self.log_tail('linkemu')}") from None

    def log_tail(self, name: str) -> str:
        try:
            with open(os.path.join(self.workdir, f"{name}.log")) as f:
                return f.read()[-2000:].strip() or "(empty)"
        except OSError:
            return "(none)"

    def start_services(self, paths: dict[str, str]) -> None:
        argv = [
            sys.executable,
            "-m",
            "tests.testbed.services",
            "--ip",
            SERVER_IP,
            "--cert",
            paths["cert"],
            "--key",
            paths["key"],
        ]
        with self.log_file("services") as log_f:
            self.services = self.popen(self.server_ns, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=log_f, text=True, bufsize=1)  # fmt: skip
        assert self.services.stdout is not None
        try:
            read_line(self.services.stdout, 15, "server services")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; its log: {self.log_tail('services')}") from None
        if self.profile.dns_broken:
            self.ask(self.services, {"dns_broken": True}, "server services")

    def ask(self, proc: subprocess.Popen, message: dict[str, Any], what: str) -> str:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()
        answer = read_line(proc.stdout, 15, what)
        if answer.startswith("error"):
            raise RuntimeError(f"{what}: {answer}")
        return answer

    # ---- teardown ------------------------------------------------------------------------------

    def destroy(self) -> None:
        """Kill our processes, delete our namespaces and /etc/netns dirs; safe to call twice."""
        for name, proc in (("linkemu", self.emulator), ("services", self.services)):
            if proc is not None and proc.poll() not in (None, 0):  # it died during the test: say why
                print(f"testbed {name} exited {proc.returncode}: {self.log_tail(name)}", file=sys.stderr)
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 2.0
        for proc in self.processes:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        self.processes.clear()
        for ns in reversed(self.namespaces):
            remove_namespace(ns)
        self.namespaces.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self in _live:
            _live.remove(self)

    def __enter__(self) -> Testbed:
        try:
            return self.build()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc: object) -> None:
        self.destroy()


@atexit.register
def _destroy_leftovers() -> None:
    for tb in list(_live):
        tb.destroy()
