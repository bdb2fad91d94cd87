"""A link verdict as Reading fields: shared by the `link` probe and diagnose's link check."""

from __future__ import annotations

from collections.abc import Mapping

from agent.linktype import features as lf
from agent.linktype.classify import Observation, Operator, Verdict
from agent.linktype.settings import LinktypeConfig
from agent.reading.model import FieldValue


def operators_from(lt: LinktypeConfig) -> tuple[Operator, ...]:
    return tuple(Operator(o.name, o.link_type, tuple(o.prefixes), tuple(o.asns)) for o in lt.operators)


def evidence_text(verdict: Verdict) -> str:
    """Compact: every byte is paid for on a satellite link."""
    parts = []
    for e in verdict.evidence:
        params = ",".join(f"{k}={v}" for k, v in e.params.items())
        parts.append(f"{e.rule}:{params}" if params else e.rule)
    return ";".join(parts)


def verdict_fields(verdict: Verdict, obs: Observation, facts: Mapping[str, str]) -> dict[str, FieldValue]:
    floor = lf.access_floor(obs.gateway, obs.isp)
    isp_min = lf.idle_min(obs.isp)
    fields: dict[str, FieldValue] = {
        "link_type": verdict.link_type,
        "confidence": verdict.confidence,
        "access": verdict.access,
        "backhaul": verdict.backhaul,
        "access_ms": round(floor, 2) if floor is not None else None,
        "isp_min_ms": round(isp_min, 2) if isp_min is not None else None,
        "isp_hop": facts.get("isp_hop", ""),
        "idle_samples": len(lf.received(obs.isp)),
        "samples": len(obs.isp),
        "evidence": evidence_text(verdict),
    }
    if verdict.links:
        fields["links"] = "+".join(v.link_type for v in verdict.links)
    return fields
