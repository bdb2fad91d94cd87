"""Who is told what (routing rules), and the durable delivery of it (the outbox).

A notice becomes one queued message per recipient its rules name, each with an
idempotency key made from the incident, the notice's number and the recipient; the
messages are stored with the incident change that caused them (see `store.save`). The
sender takes each recipient's oldest message first, so an opening never arrives after
its resolution; a failure waits with exponential backoff and jitter, and only that
recipient waits. A message is marked sent in the transaction that records the attempt,
so after a restart nothing sent is sent again; the one window left (sent, then the
process dies before the commit) is what the idempotency key in the webhook header, the
e-mail Message-ID and the WhatsApp header are for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import random
from collections.abc import Sequence
from typing import Callable, Optional

from agent.collector.incidents import messages
from agent.collector.incidents.channels import DeliveryError
from agent.collector.incidents.engine import Notice
from agent.collector.incidents.settings import NotifySettings, RuleSettings
from agent.collector.incidents.store import Outgoing, Queued, pending, record_attempt
from agent.collector.store import Store

log = logging.getLogger(__name__)


def route(notice: Notice, rules: Sequence[RuleSettings]) -> list[tuple[str, str, str]]:
    """(channel, recipient, lang) for every recipient the rules name; the first rule naming one sets its language."""
    inc = notice.incident
    kecamatan = {m.get("kecamatan", "").casefold() for m in inc.members} | {inc.kecamatan.casefold()}
    causes = {inc.cause} | {m.get("cause", "") for m in inc.members}
    out: dict[tuple[str, str], str] = {}
    for rule in rules:
        if rule.kecamatan and not kecamatan & {k.casefold() for k in rule.kecamatan}:
            continue
        if inc.severity not in rule.severity:
            continue
        if rule.causes and not causes & set(rule.causes):
            continue
        for item in rule.to:
            channel, _, address = item.partition(":")
            out.setdefault((channel, address), rule.lang)
    return [(c, a, lang) for (c, a), lang in out.items()]


def message_key(notice: Notice, channel: str, recipient: str) -> str:
    raw = f"{notice.incident.id}|{notice.seq}|{notice.event}|{channel}|{recipient}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def outgoing(notices: Sequence[Notice], rules: Sequence[RuleSettings], tz: dt.tzinfo) -> list[Outgoing]:
    """The messages a pass's notices make, rendered in each recipient's language."""
    out = []
    for notice in notices:
        for channel, recipient, lang in route(notice, rules):
            key = message_key(notice, channel, recipient)
            text = messages.render(notice, lang, tz)
            out.append(
                Outgoing(key, notice.incident.id, notice.event, channel, recipient, lang, text.subject, text.text,
                         messages.payload(notice, key, tz))
            )  # fmt: skip
    return out


class Sender:
    """Sends what is due from the outbox; call `once()` every few seconds."""

    def __init__(
        self,
        store: Store,
        notify: NotifySettings,
        send: Callable[[Queued], None],
        rng: Optional[random.Random] = None,
    ) -> None:
        self.store, self.n, self.send = store, notify, send
        self.rng = rng or random.Random()
        self.warned: set[tuple[str, str]] = set()

    def once(self, now: float) -> int:
        """Try each recipient's oldest due message; returns how many were sent. Raises StoreDown."""
        blocked: set[tuple[str, str]] = set()
        sent = 0
        for q in pending(self.store):
            dest = (q.channel, q.recipient)
            if dest in blocked:
                continue
            if q.next_attempt > now:
                blocked.add(dest)
                continue
            if now - q.created > self.n.give_up_s:
                record_attempt(self.store, q.id, now, sent=False, error="gave up: too old")
                log.error(
                    "dropped a %s message for %s: undelivered for %.0f h", q.channel, _who(q), (now - q.created) / 3600
                )
                continue
            try:
                self.send(q)
            except DeliveryError as exc:
                blocked.add(dest)
                self._failed(q, now, exc)
                continue
            record_attempt(self.store, q.id, now, sent=True)
            if dest in self.warned:
                self.warned.discard(dest)
                log.warning("%s delivers again to %s", q.channel, _who(q))
            sent += 1
        return sent

    def _failed(self, q: Queued, now: float, exc: DeliveryError) -> None:
        if exc.permanent:
            record_attempt(self.store, q.id, now, sent=False, error=str(exc))
            log.error("cannot deliver a %s message to %s, not retrying: %s", q.channel, _who(q), exc)
            return
        wait = min(self.n.retry_max_s, self.n.retry_min_s * 2 ** min(q.attempts, 30)) * self.rng.uniform(0.8, 1.2)
        record_attempt(self.store, q.id, now, sent=False, error=str(exc), retry_at=now + wait)
        dest = (q.channel, q.recipient)
        if dest not in self.warned:
            self.warned.add(dest)
            log.warning("cannot deliver to %s %s yet (%s); queued, retrying with backoff", q.channel, _who(q), exc)


def _who(q: Queued) -> str:
    return q.recipient or "(webhook)"
