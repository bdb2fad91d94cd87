"""Which link a desa really has: fiber, GEO or LEO satellite, cellular, other.

Pure functions: an `Observation` in, a `Verdict` out, no I/O (the gathering is
in `agent.linktype.evidence`). Every rule that fires leaves an `Evidence` with its
numbers, so a technician or the regency office can see why.

Rules and thresholds (the physics and published figures behind them are in docs/linktype.md):
- physics decides GEO: four legs of >= 35,786 km cannot take less than 477.5 ms,
  so an idle minimum >= 450 ms to the first ISP hop is GEO whatever else is seen;
- identity (dish API, WWAN interface, operator prefixes) beats timing, except
  behind a VPN, where the access delay is trusted over the operator;
- timing uses idle minima only (bufferbloat can push a loaded fiber past 600 ms)
  and the access delay RTT(ISP hop) - RTT(gateway), which drops LAN/Wi-Fi jitter.
Rules vote in log-odds against a uniform prior (weight = logit(conf) - logit(0.2)),
so one rule alone yields its own confidence and agreeing rules add up.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Optional

from agent.linktype import features as lf
from agent.linktype.features import PromoTrial, Sample
from agent.linktype.periodicity import Periodicity, known_phase, periodicity
from agent.reading.model import FieldValue

FIBER, GEO, LEO, CELLULAR, OTHER, UNKNOWN = "fiber", "satellite-geo", "satellite-leo", "cellular", "other", "unknown"
CLASSES = (FIBER, GEO, LEO, CELLULAR, OTHER)
TERRESTRIAL = "terrestrial"

GEO_FLOOR_MS = 450.0  # below the 477.5 ms four-leg propagation minimum, with margin
PRIOR = 1.0 / len(CLASSES)
MIN_CONFIDENCE = 0.6  # below this the verdict is "unknown" (with the two leading candidates)
WWAN_DRIVERS = ("qmi_wwan", "cdc_mbim", "cdc_ether", "rndis_host", "huawei_cdc_ncm", "option")
STRONG_WWAN_DRIVERS = ("qmi_wwan", "cdc_mbim")  # cdc_ether/rndis/usb* may also be a USB Ethernet adapter
VPN_NAME_PREFIXES = ("tun", "tap", "wg", "ipsec", "vti", "zt", "tailscale")
STARLINK_CGNAT_GW = ipaddress.ip_address("100.64.0.1")
RFC1918_172 = ipaddress.ip_network("172.16.0.0/12")
CGNAT = ipaddress.ip_network("100.64.0.0/10")


@dataclasses.dataclass(frozen=True)
class InterfaceFacts:
    """The default-route interface, as sysfs describes it."""

    name: str = ""
    devtype: str = ""  # DEVTYPE= from uevent, e.g. "wwan"
    driver: str = ""  # basename of device/driver
    arphrd: int = 0  # /sys/class/net/<if>/type: 519 raw IP (qmi_wwan), 512 PPP


@dataclasses.dataclass(frozen=True)
class Operator:
    """An operator the config knows: prefixes and ASNs that say which kind of link it sells."""

    name: str
    link_type: str
    prefixes: tuple[str, ...] = ()
    asns: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Observation:
    gateway: tuple[Sample, ...] = ()
    isp: tuple[Sample, ...] = ()  # the first ISP hop, or a nearby target standing in for it
    isp_is_hop: bool = True
    clock_synced: bool = False
    promo: tuple[PromoTrial, ...] = ()
    promo_skipped: int = 0  # promotion trials never run: the interface found no quiet spell in time
    interface: Optional[InterfaceFacts] = None
    vpn: bool = False
    hops: tuple[str, ...] = ()  # responders from the gateway on ("" where none answered)
    dish_api: bool = False  # the Starlink gRPC API answered on 192.168.100.1:9200
    dish_host: bool = False  # something (anything) answered on 192.168.100.1
    asn: int = 0  # the node's operator ASN, when configured
    operators: tuple[Operator, ...] = ()


@dataclasses.dataclass(frozen=True)
class Evidence:
    rule: str  # stable id; i18n key "link.ev.<rule>"
    link_type: str  # the class it votes for ("" = information only)
    confidence: float
    params: Mapping[str, FieldValue] = dataclasses.field(default_factory=dict)

    @property
    def weight(self) -> float:
        if not self.link_type or self.confidence <= 0:
            return 0.0
        return logit(self.confidence) - logit(PRIOR)

    def to_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "link_type": self.link_type, "confidence": self.confidence, **self.params}


@dataclasses.dataclass(frozen=True)
class Verdict:
    link_type: str
    confidence: float
    access: str  # the medium next to the customer
    backhaul: str  # what the path behind it behaves like
    evidence: tuple[Evidence, ...]
    candidates: tuple[tuple[str, float], ...] = ()  # (class, posterior), best first
    links: tuple[Verdict, ...] = ()  # two links (failover / multi-WAN) when seen

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "link_type": self.link_type,
            "confidence": self.confidence,
            "access": self.access,
            "backhaul": self.backhaul,
            "evidence": [e.to_dict() for e in self.evidence],
            "candidates": [list(c) for c in self.candidates],
        }
        if self.links:
            out["links"] = [v.to_dict() for v in self.links]
        return out


def logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def combine(evidence: Sequence[Evidence]) -> list[tuple[str, float]]:
    """Posterior per class, best first."""
    score = dict.fromkeys(CLASSES, 0.0)
    for e in evidence:
        if e.link_type in score:
            score[e.link_type] += e.weight
    top = max(score.values())
    exp = {c: math.exp(s - top) for c, s in score.items()}
    total = sum(exp.values())
    return sorted(((c, round(v / total, 3)) for c, v in exp.items()), key=lambda cv: -cv[1])


# ----- identity rules -------------------------------------------------------


def interface_rules(facts: Optional[InterfaceFacts]) -> list[Evidence]:
    if facts is None or not facts.name:
        return []
    params = {"iface": facts.name, "driver": facts.driver or "-", "devtype": facts.devtype or "-"}
    if facts.devtype == "wwan" or facts.driver in STRONG_WWAN_DRIVERS or facts.arphrd == 519:
        return [Evidence("wwan_interface", CELLULAR, 0.95, params)]
    if facts.name.startswith(("wwan", "wwp", "rmnet")):
        return [Evidence("wwan_interface", CELLULAR, 0.9, params)]
    if facts.driver in WWAN_DRIVERS or facts.name.startswith(("usb", "ppp")) or facts.arphrd == 512:
        # a USB modem in Ethernet mode, or a PPP dial-up modem; also PPPoE on fiber/DSL: a hint only
        return [Evidence("usb_modem_hint", CELLULAR, 0.4, params)]
    return []


def in_any(address: str, prefixes: Iterable[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for p in prefixes:
        try:
            if ip in ipaddress.ip_network(p, strict=False):
                return True
        except ValueError:
            continue
    return False


def operator_rules(obs: Observation) -> list[Evidence]:
    out = []
    for op in obs.operators:
        if op.link_type not in CLASSES:
            continue
        by_asn = obs.asn and obs.asn in op.asns
        hop = next((h for h in obs.hops[:6] if h and in_any(h, op.prefixes)), "")
        if not by_asn and not hop:
            continue
        conf = 0.93 if op.link_type == LEO else 0.7
        if obs.vpn:
            conf = 0.45  # a tunnel's exit says nothing about the access medium
        what = f"AS{obs.asn}" if by_asn else hop
        out.append(Evidence("operator", op.link_type, conf, {"operator": op.name, "match": what}))
    return out


def starlink_rules(obs: Observation, access_min: Optional[float]) -> list[Evidence]:
    out = []
    if obs.dish_api:
        out.append(Evidence("dish_api", LEO, 0.98, {"address": "192.168.100.1:9200"}))
    elif obs.dish_host:
        # DOCSIS cable modems serve their status page on 192.168.100.1 too
        out.append(Evidence("not_a_dish", "", 0.0, {"address": "192.168.100.1"}))
    hops = [h for h in obs.hops if h]
    for i in range(len(hops) - 1):
        try:
            first, second = ipaddress.ip_address(hops[i]), ipaddress.ip_address(hops[i + 1])
        except ValueError:
            continue
        if first == STARLINK_CGNAT_GW and second in RFC1918_172:
            if access_min is not None and 12.0 <= access_min <= 150.0:
                out.append(Evidence("starlink_hops", LEO, 0.85, {"hop": hops[i], "next": hops[i + 1]}))
            break
    return out


def cgnat_rule(obs: Observation, access_min: Optional[float]) -> Optional[Evidence]:
    """A carrier-grade NAT hop (100.64/10) right behind the gateway, with an access delay a
    mobile core has (8-150 ms): a hint of cellular. Fixed ISPs use CGNAT too, but their
    first hop is a few ms away; Starlink's 100.64.0.1 pattern is its own rule."""
    if access_min is None or not 8.0 <= access_min <= 150.0:
        return None
    hops = [h for h in obs.hops[:4] if h]
    for i, h in enumerate(hops):
        try:
            ip = ipaddress.ip_address(h)
        except ValueError:
            continue
        if ip in CGNAT:
            after = hops[i + 1] if i + 1 < len(hops) else ""
            if ip == STARLINK_CGNAT_GW and after and in_any(after, (str(RFC1918_172),)):
                return None
            return Evidence("cgnat_hop", CELLULAR, 0.55, {"hop": h})
    return None


# ----- timing rules ---------------------------------------------------------


def sufficiency(n: int, span: float) -> float:
    """How much a timing rule may claim from n idle samples over span seconds (0.75..1)."""
    if n >= 50 and span >= 60:
        return 1.0
    if n >= 20:
        return 0.9
    return 0.8


def geo_rule(isp: Sequence[Sample], isp_is_hop: bool) -> Optional[Evidence]:
    idle = lf.received(isp)
    if not idle:
        return None
    low = min(s.rtt_ms for s in idle if s.rtt_ms is not None)
    if low < GEO_FLOOR_MS:
        return None
    conf = {1.0: 0.97, 0.9: 0.93, 0.8: 0.85}[sufficiency(len(idle), lf.span_s(isp))]
    if len(idle) < 3:
        conf = 0.7
    where = "isp_hop" if isp_is_hop else "nearby_target"
    return Evidence("geo_floor", GEO, conf, {"min_ms": round(low, 1), "n": len(idle), "to": where})


def step_rules(access: Sequence[Sample], clock_synced: bool) -> tuple[list[Evidence], Optional[Periodicity]]:
    """Starlink's 15-s steps: the period from the series itself (no clock needed), then, with a
    synced clock, whether they fall at UTC :12/:27/:42/:57 as Starlink's do everywhere."""
    if lf.span_s(access) < 40:
        return [], None
    per = periodicity(access)
    out: list[Evidence] = []
    phase: Optional[float] = lf.STARLINK_PHASE_S if clock_synced else None
    if per is not None and per.periodic:
        params: dict[str, FieldValue] = {"step_ms": round(per.step_ms, 1), "contrast": round(per.contrast, 1)}
        params.update(boundaries=per.boundaries, phase_s=per.phase_s)
        conf = 0.85 if per.boundaries >= 8 else 0.8 if per.boundaries >= 5 else 0.72
        if not clock_synced:
            out.append(Evidence("leo_period", LEO, conf, params))
            phase = per.phase_s
        elif lf.phase_matches(per.phase_s):
            out.append(Evidence("leo_period", LEO, conf, params))
            out.append(Evidence("leo_phase", LEO, 0.6, {"phase_s": per.phase_s}))
        else:  # a synced clock puts Starlink's steps at :12; elsewhere it is some other 15-s rhythm
            out.append(Evidence("steps_off_phase", "", 0.0, params))
            phase = per.phase_s
    elif clock_synced:
        # the known phase needs no search, so steps the fold could not prove may still count
        score, step, count = known_phase(access, lf.STARLINK_PHASE_S)
        if count >= 3 and score >= 2.5 and step >= 2.0:
            params = {"score": round(score, 1), "step_ms": round(step, 1), "boundaries": count}
            out.append(Evidence("leo_steps", LEO, 0.82 if count >= 8 else 0.75, params))
    if phase is not None:
        align, losses = lf.loss_alignment(access, phase)
        if losses >= 5 and align >= 0.4:
            out.append(Evidence("loss_at_boundaries", LEO, 0.45, {"share": round(align, 2), "losses": losses}))
    return out, per


def promo_rule(trials: Sequence[PromoTrial], skipped: int = 0) -> Optional[Evidence]:
    """The radio waking up. A trial without the delay proves little on a village link, where
    other users keep the radio awake; one with it is hard to get from any other medium."""
    hits, valid, median = lf.promo_hits(trials)
    disturbed = [t.disturbed for t in trials if t.disturbed]
    params: dict[str, FieldValue] = {"delta_ms": round(median, 1) if median is not None else "-", "hits": hits}
    params["trials"] = valid
    if disturbed:
        params["disturbed"] = len(disturbed)
        params["why"] = "+".join(sorted(set(disturbed)))
    if skipped:
        params["no_quiet"] = skipped
    if not valid or median is None:
        return Evidence("no_idle_promotion", "", 0.0, params) if disturbed or skipped else None
    if hits >= 2 and hits * 3 >= valid * 2:
        return Evidence("idle_promotion", CELLULAR, 0.8, params)
    if hits >= 1:
        return Evidence("idle_promotion", CELLULAR, 0.7 if hits * 2 >= valid else 0.6, params)
    return Evidence("no_idle_promotion", "", 0.0, params)


def spread_rules(
    sp: lf.Spread,
    per: Optional[Periodicity],
    promo: Optional[Evidence],
    fixed_hint: bool,
    span: float,
    strong_steps: bool = False,
) -> list[Evidence]:
    a, iqr = sp.minimum, sp.iqr
    suff = sufficiency(sp.count, span)
    p = {"access_ms": round(a, 1), "iqr_ms": round(iqr, 1), "p95_ms": round(sp.p95_minus_min, 1)}
    p["flat"] = round(sp.flatness, 2)
    no_promo = promo is None or promo.link_type != CELLULAR
    no_steps = per is not None and per.aperiodic  # long enough to have seen Starlink's period: none
    out = []
    # p90 rather than the research note's p95: a bufferbloat episode's first second slips past the
    # 1-s idle gate, and fiber must survive that.
    if a <= 4.0 and iqr <= 1.0 and sp.p90_minus_min <= 3.0 and sp.flatness >= 0.9:
        out.append(Evidence("flat_short_access", FIBER, (0.9 if fixed_hint else 0.82) * suff, p))
    elif a <= 8.0 and iqr <= 0.6 and sp.p90_minus_min <= 2.0 and sp.flatness >= 0.9 and no_promo:
        # FTTH to a distant BNG (rural Sumatra: the OLT/BNG may be 100+ km away). A VDSL fast path
        # looks the same; Muba has none, so fiber it is, with less confidence.
        out.append(Evidence("flat_short_access", FIBER, (0.85 if fixed_hint else 0.76) * suff, p))
    elif 4.0 < a <= 45.0 and iqr <= 1.5 and sp.flatness >= 0.8 and no_promo:
        out.append(Evidence("flat_fixed_offset", OTHER, 0.65 * suff / 0.9, p))  # DSL interleaving, cable
    elif ((4.0 < a <= 60.0 and 3.0 <= iqr <= 25.0) or (60.0 < a <= 150.0 and iqr >= 3.0)) and not strong_steps:
        # jitter that varies sample to sample, without 15-s plateaus: a radio scheduler, not LEO
        conf = 0.66 if no_steps else 0.5
        out.append(Evidence("scheduler_jitter", CELLULAR, conf * suff / 0.9, p))
    elif 1.0 < a <= 20.0 and 1.0 < iqr < 3.0:
        # cable or a WISP ("RT/RW net"); a promotion test without a delay rules out cellular
        tested = promo is not None and promo.rule == "no_idle_promotion"
        out.append(Evidence("wireless_fixed", OTHER, 0.62 if tested else 0.5, p))
    elif 100.0 <= a < GEO_FLOOR_MS:
        out.append(Evidence("long_access", "", 0.0, p))  # MEO, distant PoP, long backhaul: no vote
    else:
        out.append(Evidence("access", "", 0.0, p))
    return out


# ----- the classifier -------------------------------------------------------


def classify(obs: Observation, split_clusters: bool = True) -> Verdict:
    """The verdict on one observation; see the module docstring for the rules."""
    if split_clusters:
        two = lf.two_clusters(obs.isp)
        if two is not None:
            return classify_two(obs, two)
    evidence: list[Evidence] = []
    idle = lf.received(obs.isp)
    if not obs.isp or not lf.received(obs.isp, idle_only=False):
        evidence.append(Evidence("no_replies", "", 0.0, {"n": len(obs.isp)}))
    elif not idle:
        evidence.append(Evidence("no_idle_samples", "", 0.0, {"n": len(obs.isp)}))
    if obs.isp and not obs.isp_is_hop:
        evidence.append(Evidence("nearby_target", "", 0.0, {}))
    if obs.vpn:
        evidence.append(Evidence("vpn", "", 0.0, {"iface": obs.interface.name if obs.interface else "-"}))
    access = lf.access_series(obs.gateway, obs.isp)
    sp = lf.spread(access, lf.access_floor(obs.gateway, obs.isp))
    access_min = sp.minimum if sp else None

    iface = interface_rules(obs.interface)
    promo = promo_rule(obs.promo, obs.promo_skipped)
    geo = geo_rule(obs.isp, obs.isp_is_hop)
    steps, per = step_rules(access, obs.clock_synced) if geo is None else ([], None)
    starlink = starlink_rules(obs, access_min)
    cgnat = cgnat_rule(obs, access_min) if not obs.vpn and geo is None else None
    operators = operator_rules(obs) + ([cgnat] if cgnat else [])
    fixed_hint = any(e.link_type in (FIBER, OTHER) for e in operators)

    timing: list[Evidence] = []
    if geo is not None:
        timing.append(geo)
    elif sp is not None:
        strong = any(e.link_type == LEO and e.rule in ("leo_period", "leo_steps", "steps_off_phase") for e in steps)
        timing += spread_rules(sp, per, promo, fixed_hint, lf.span_s(access), strong)
    identity = [e for e in iface + operators if e.link_type == CELLULAR]
    # A VSAT terminal's return link also delays the first packet after silence (it must ask
    # for capacity), so on GEO only identity names a tower; on LEO the promotion may too.
    cellular_access = identity + ([promo] if promo and promo.link_type == CELLULAR and geo is None else [])
    backhaul = backhaul_of(geo, steps, starlink, operators, access_min)
    if backhaul in ("geo", "leo") and any(e.confidence >= 0.65 for e in cellular_access):
        # A BTS on VSAT or on Starlink backhaul: the medium here is cellular, the path is satellite.
        votes = iface + ([promo] if promo else []) + operators
        evidence += [*votes, Evidence("satellite_backhaul", "", 0.0, {"backhaul": backhaul})]
        evidence += [dataclasses.replace(e, link_type="") for e in timing + steps + starlink]
    else:
        if promo is not None and geo is not None:
            promo = dataclasses.replace(promo, link_type="")  # a VSAT's capacity request, as likely
        evidence += iface + ([promo] if promo else []) + starlink + operators + timing + steps
    return decide(evidence, backhaul)


def backhaul_of(
    geo: Optional[Evidence],
    steps: list[Evidence],
    starlink: list[Evidence],
    operators: list[Evidence],
    access_min: Optional[float],
) -> str:
    if geo is not None:
        return "geo"
    if any(e.link_type == LEO and e.confidence >= 0.6 for e in steps + starlink + operators):
        return "leo"
    if access_min is not None and access_min < 100.0:
        return TERRESTRIAL
    return UNKNOWN


def decide(evidence: list[Evidence], backhaul: str) -> Verdict:
    posterior = combine(evidence)
    voted = any(e.weight for e in evidence)
    best, conf = posterior[0]
    if not voted or conf < MIN_CONFIDENCE:
        return Verdict(
            UNKNOWN, round(conf if voted else 0.0, 3), UNKNOWN, backhaul, tuple(evidence), tuple(posterior[:2])
        )
    if backhaul == TERRESTRIAL and best in (GEO, LEO):
        backhaul = "geo" if best == GEO else "leo"  # identity said satellite although the timing looked close
    if backhaul == UNKNOWN and best in (FIBER, OTHER):
        backhaul = TERRESTRIAL
    return Verdict(best, conf, best, backhaul, tuple(evidence), tuple(posterior[:2]))


def classify_two(obs: Observation, two: lf.Clusters) -> Verdict:
    """A failover link: classify each cluster's windows on their own; the busier one leads."""
    low_isp, high_isp = lf.split_by_cluster(obs.isp, two.split_ms)
    verdicts = []
    for part in (low_isp, high_isp):
        t0, t1 = part[0].t - 1, part[-1].t + 1
        gw = tuple(s for s in obs.gateway if t0 <= s.t <= t1)
        verdicts.append(classify(dataclasses.replace(obs, isp=tuple(part), gateway=gw), split_clusters=False))
    lead = verdicts[0] if two.low_windows >= two.high_windows else verdicts[1]
    params: dict[str, FieldValue] = {"low_ms": round(two.low_ms, 1), "high_ms": round(two.high_ms, 1)}
    params.update(first=verdicts[0].link_type, second=verdicts[1].link_type)
    note = Evidence("two_links", "", 0.0, params)
    return dataclasses.replace(
        lead,
        confidence=round(lead.confidence * 0.9, 3),
        evidence=(note, *lead.evidence),
        links=tuple(verdicts),
    )
