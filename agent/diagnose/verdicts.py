"""From Readings to a technician's verdict: pure rules, no I/O.

The question in the field is which part is broken: the LAN, the gateway, the
modem/ONT/dish or the uplink, DNS, or just one site. Each check looks at its
own Readings and at the checks before it, so a dead uplink is reported once,
at the uplink, and DNS and web say "because the internet is down".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Optional

from agent.reading.model import FieldValue, Reading

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"
HEALTHY, DEGRADED, DOWN = "healthy", "degraded", "down"
EXIT_CODES = {HEALTHY: 0, DEGRADED: 1, DOWN: 2}

# Thresholds a technician would call "not right", chosen for access links
# that include GEO satellite (600 ms is normal there, so latency alone only warns).
LAN_RTT_WARN_MS = 50.0
LAN_LOSS_WARN_PCT = 5.0
UPLINK_LOSS_WARN_PCT = 5.0
UPLINK_RTT_WARN_MS = 1000.0
DNS_SLOW_MS = 500.0
CERT_WARN_DAYS = 14.0
DNS_FAILURE_CODES = ("resolve_failed",)
# The numbers a check shows, by i18n key: the words are the reader's language, the numbers are not.
Params = Mapping[str, FieldValue]


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    status: str
    numbers: Sequence[tuple[str, Params]]  # i18n key and params
    hint: Optional[tuple[str, Params]] = None
    readings: tuple[str, ...] = ()  # ids of the Readings it rests on

    def to_dict(self) -> dict[str, object]:
        return {
            "check": self.name,
            "status": self.status,
            "hint": self.hint[0].split(".", 1)[1] if self.hint else None,
            "readings": list(self.readings),
        }


def role_of(measurement: str, target: str, options: object, role: str = "") -> Optional[str]:
    """Which diagnosis check a configured target serves: its `role`, or one inferred from it."""
    if role:
        return role
    if measurement in ("icmp", "tcp"):
        return "gateway" if target.split(":")[0] == "gateway" else "internet"
    if measurement == "dns":
        return "dns-system" if getattr(options, "server", "system") == "system" else "dns-public"
    if measurement == "http":
        return "web"
    return None


def rtt_of(r: Reading) -> Optional[float]:
    f = r.fields
    value = f.get("rtt_p50_ms", f.get("connect_p50_ms"))
    return float(value) if isinstance(value, (int, float)) else None


def loss_of(r: Reading) -> float:
    value = r.fields.get("loss_pct", 0.0)
    return float(value) if isinstance(value, (int, float)) else 0.0


def latency_numbers(readings: list[Reading]) -> list[tuple[str, Params]]:
    out: list[tuple[str, Params]] = []
    for r in readings:
        rtt = rtt_of(r)
        if r.ok and rtt is not None:
            out.append(("num.rtt_loss", {"target": r.target, "rtt": f"{rtt:.1f}", "loss": f"{loss_of(r):g}"}))
        else:
            why = r.error["code"] if r.error else "?"
            out.append(("num.no_reply", {"target": r.target, "why": why}))
    return out


def ids(readings: list[Reading]) -> tuple[str, ...]:
    return tuple(r.id for r in readings)


def gateway_check(readings: list[Reading]) -> Check:
    if not readings:
        return Check("gateway", SKIP, [("num.none", {})])
    nums = latency_numbers(readings)
    good = [r for r in readings if r.ok]
    if not good:
        no_route = any(r.error and r.error["code"] == "no_route" for r in readings)
        hint = "hint.lan_no_route" if no_route else "hint.gateway_down"
        return Check("gateway", FAIL, nums, (hint, {}), ids(readings))
    slow = any((rtt_of(r) or 0.0) > LAN_RTT_WARN_MS or loss_of(r) > LAN_LOSS_WARN_PCT for r in good)
    if slow:
        return Check("gateway", WARN, nums, ("hint.gateway_slow", {}), ids(readings))
    return Check("gateway", OK, nums, None, ids(readings))


def internet_check(readings: list[Reading], gateway: Check) -> Check:
    if not readings:
        return Check("internet", SKIP, [("num.none", {})])
    nums = latency_numbers(readings)
    good = [r for r in readings if r.ok]
    if not good:
        key = {OK: "hint.uplink_down", WARN: "hint.uplink_down", FAIL: "hint.fix_gateway_first"}.get(
            gateway.status, "hint.internet_down"
        )
        return Check("internet", FAIL, nums, (key, {}), ids(readings))
    best = min(good, key=lambda r: (loss_of(r), rtt_of(r) or 0.0))
    loss, rtt = loss_of(best), rtt_of(best) or 0.0
    if loss > UPLINK_LOSS_WARN_PCT or rtt > UPLINK_RTT_WARN_MS:
        hint = ("hint.internet_lossy", {"loss": f"{loss:g}", "rtt": f"{rtt:.0f}"})
        return Check("internet", WARN, nums, hint, ids(readings))
    return Check("internet", OK, nums, None, ids(readings))


def dns_numbers(readings: list[Reading]) -> list[tuple[str, Params]]:
    out: list[tuple[str, Params]] = []
    for r in readings:
        if "query_ms" in r.fields:
            out.append(
                (
                    "num.dns",
                    {"server": r.fields.get("server"), "ms": r.fields["query_ms"], "rcode": r.fields.get("rcode")},
                )
            )
        else:
            out.append(
                (
                    "num.no_reply",
                    {"target": r.fields.get("server", r.target), "why": r.error["code"] if r.error else "?"},
                )
            )
    return out


def dns_check(system: list[Reading], public: list[Reading], internet: Check) -> Check:
    readings = system + public
    if not readings:
        return Check("dns", SKIP, [("num.none", {})])
    nums = dns_numbers(readings)
    primary = system or public
    if all(r.ok for r in primary):
        slowest = max(float(r.fields.get("query_ms", 0.0) or 0.0) for r in primary)
        if slowest > DNS_SLOW_MS:
            return Check("dns", WARN, nums, ("hint.dns_slow", {"ms": f"{slowest:.0f}"}), ids(readings))
        return Check("dns", OK, nums, None, ids(readings))
    if internet.status == FAIL:
        hint = "hint.dns_no_internet"
    elif system and public and any(r.ok for r in public):
        hint = "hint.dns_local_broken"
    else:
        hint = "hint.dns_down"
    return Check("dns", FAIL, nums, (hint, {}), ids(readings))


def web_check(readings: list[Reading], internet: Check) -> Check:
    if not readings:
        return Check("web", SKIP, [("num.none", {})])
    nums: list[tuple[str, Params]] = []
    for r in readings:
        f = r.fields
        if "status" in f:
            nums.append(
                (
                    "num.web",
                    {"target": r.target, "status": f["status"], "ttfb": f.get("ttfb_ms"), "total": f.get("total_ms")},
                )
            )
        else:
            nums.append(("num.no_reply", {"target": r.target, "why": r.error["code"] if r.error else "?"}))
    if all(r.ok for r in readings):
        days = [d for r in readings if isinstance(d := r.fields.get("cert_days_left"), (int, float))]
        if days and min(days) < CERT_WARN_DAYS:
            return Check("web", WARN, nums, ("hint.cert_expiring", {"days": f"{min(days):.0f}"}), ids(readings))
        return Check("web", OK, nums, None, ids(readings))
    if any(r.error and r.error["code"] in DNS_FAILURE_CODES for r in readings):
        hint = "hint.web_needs_dns"
    elif internet.status == FAIL:
        hint = "hint.web_no_internet"
    else:
        hint = "hint.site_down"
    return Check("web", FAIL, nums, (hint, {}), ids(readings))


def latency_checks(by_role: dict[str, list[Reading]]) -> list[Check]:
    gateway = gateway_check(by_role.get("gateway", []))
    internet = internet_check(by_role.get("internet", []), gateway)
    dns = dns_check(by_role.get("dns-system", []), by_role.get("dns-public", []), internet)
    web = web_check(by_role.get("web", []), internet)
    return [gateway, internet, dns, web]


def overall(checks: list[Check]) -> str:
    status = {c.name: c.status for c in checks}
    if status.get("gateway") == FAIL or status.get("internet") == FAIL:
        return DOWN
    if any(c.status in (FAIL, WARN) for c in checks):
        return DEGRADED
    return HEALTHY
