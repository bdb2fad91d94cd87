"""A second uplink for a built testbed: the node on two links, with policy routing and failover.

    node eth0 ── gw  ══ router  (emulator) ══ isp  ── server eth0 (203.0.113.18)     primary
    node eth1 ── gw2 ══ router2 (emulator) ══ isp2 ── server eth1 (203.0.113.50)     backup
      192.0.2.2  .1   203.0.113.34/28       .33   .49 ── .50   (203.0.113.48/28)

The node has both default routes (the backup's with a higher metric) and source rules, so
traffic from each address leaves by its own link, as a Pi with an Ethernet uplink and a USB 4G
modem is set up. `cut_primary` kills the primary link (the emulator drops everything) and does
what a failover daemon (mwan3, ifmetric) does when its health check fails: takes the primary's
default route out of the main table. `restore_primary` undoes both.
"""

from __future__ import annotations

import subprocess
import sys

from tests.testbed.bed import GATEWAY_IP, NO_OFFLOADS, NODE_IP, SERVER_IP, Testbed, run
from tests.testbed.profiles import Profile, profile_to_dict

NODE2_IP, GATEWAY2_IP = "192.0.2.2", "192.0.2.1"
GW2_WAN_IP, ISP2_IP = "203.0.113.34", "203.0.113.33"
ISP2_DOWN_IP, SERVER2_IP = "203.0.113.49", "203.0.113.50"
GW2_WAN_MAC, ISP2_UP_MAC = "02:4e:50:00:00:12", "02:4e:50:00:00:11"
PRIMARY_TABLE, BACKUP_TABLE = "100", "200"


class Backup:
    """The backup chain of one testbed; torn down with it (its namespaces are the testbed's)."""

    def __init__(self, tb: Testbed, profile: Profile, seed: int = 2) -> None:
        self.tb, self.profile = tb, profile
        prefix = tb.node_ns[: -len("-node")]
        self.gw_ns, self.router_ns, self.isp_ns = (f"{prefix}-{r}" for r in ("gw2", "router2", "isp2"))
        self.isp_ip = ISP2_IP
        self.primary_profile = tb.profile
        self.emulator: subprocess.Popen | None = None
        self.seed = seed

    def build(self) -> Backup:
        tb = self.tb
        for ns in (self.gw_ns, self.router_ns, self.isp_ns):
            run(["ip", "netns", "add", ns])
            tb.namespaces.append(ns)  # deleted with the testbed
            settings = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
            if ns != self.router_ns:
                settings += ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0"]
            tb.exec(ns, ["sysctl", "-qw", *settings])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        tb.exec(tb.server_ns, ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"])
        node, gw, router, isp, server = tb.node_ns, self.gw_ns, self.router_ns, self.isp_ns, tb.server_ns
        steps = [
            [node, "link", "add", "eth1", "type", "veth", "peer", "name", "lan0", "netns", gw],
            [
                gw,
                "link",
                "add",
                "wan0",
                "address",
                GW2_WAN_MAC,
                "type",
                "veth",
                "peer",
                "name",
                "lan0",
                "netns",
                router,
            ],
            [
                router,
                "link",
                "add",
                "wan0",
                "type",
                "veth",
                "peer",
                "name",
                "up0",
                "address",
                ISP2_UP_MAC,
                "netns",
                isp,
            ],
            [isp, "link", "add", "down0", "type", "veth", "peer", "name", "eth1", "netns", server],
            [node, "addr", "add", f"{NODE2_IP}/24", "dev", "eth1"],
            [gw, "addr", "add", f"{GATEWAY2_IP}/24", "dev", "lan0"],
            [gw, "addr", "add", f"{GW2_WAN_IP}/28", "dev", "wan0"],
            [isp, "addr", "add", f"{ISP2_IP}/28", "dev", "up0"],
            [isp, "addr", "add", f"{ISP2_DOWN_IP}/28", "dev", "down0"],
            [server, "addr", "add", f"{SERVER2_IP}/28", "dev", "eth1"],
        ]
        for ns, dev in ((node, "eth1"), (gw, "lan0"), (gw, "wan0"), (router, "lan0"), (router, "wan0"),
                        (isp, "up0"), (isp, "down0"), (server, "eth1")):  # fmt: skip
            steps.append([ns, "link", "set", dev, "up"])
        steps += [
            [gw, "route", "add", "default", "via", ISP2_IP],
            # static neighbours, as on the primary: no ARP has to cross a 600-ms emulated link
            [gw, "neigh", "replace", ISP2_IP, "lladdr", ISP2_UP_MAC, "dev", "wan0", "nud", "permanent"],
            [isp, "neigh", "replace", GW2_WAN_IP, "lladdr", GW2_WAN_MAC, "dev", "up0", "nud", "permanent"],
            [isp, "route", "add", "192.0.2.0/24", "via", GW2_WAN_IP],
            [isp, "route", "add", f"{SERVER_IP}/32", "via", SERVER2_IP],
            [server, "route", "add", "192.0.2.0/24", "via", ISP2_DOWN_IP],
            # the node: both default routes, the backup's worse; each address leaves by its own link
            [node, "route", "add", "default", "via", GATEWAY2_IP, "dev", "eth1", "metric", "20"],
            [node, "route", "add", "default", "via", GATEWAY_IP, "table", PRIMARY_TABLE],
            [node, "route", "add", "default", "via", GATEWAY2_IP, "table", BACKUP_TABLE],
            [node, "rule", "add", "from", NODE_IP, "table", PRIMARY_TABLE],
            [node, "rule", "add", "from", NODE2_IP, "table", BACKUP_TABLE],
        ]
        for ns, *argv in steps:
            run(["ip", "-n", ns, *argv])
        for ns, dev in ((gw, "wan0"), (router, "lan0"), (router, "wan0"), (isp, "up0")):
            tb.exec(ns, ["ethtool", "-K", dev, *NO_OFFLOADS])
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
        with tb.log_file("linkemu2") as log_f:
            self.emulator = tb.popen(router, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log_f, text=True, bufsize=1)  # fmt: skip
        tb.ask(self.emulator, {"profile": profile_to_dict(self.profile)}, "backup link emulator")
        return self

    def cut_primary(self) -> None:
        """The fiber is cut: nothing crosses the primary link, and the failover moves the route."""
        dead = Profile(**{**self.primary_profile.__dict__, "uplink_dead": True})
        assert self.tb.emulator is not None
        self.tb.ask(self.tb.emulator, {"profile": profile_to_dict(dead)}, "link emulator")
        run(["ip", "-n", self.tb.node_ns, "route", "del", "default", "via", GATEWAY_IP, "dev", "eth0"])

    def restore_primary(self) -> None:
        assert self.tb.emulator is not None
        self.tb.ask(self.tb.emulator, {"profile": profile_to_dict(self.primary_profile)}, "link emulator")
        run(["ip", "-n", self.tb.node_ns, "route", "add", "default", "via", GATEWAY_IP, "dev", "eth0", "metric", "0"])
