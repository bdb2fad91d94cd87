"""Incidents and alerts: why a desa is dark, told once to the right person.

`engine` (pure: Readings and node states in, incidents and notices out) with its
vocabulary in `causes`, reading the collector's one maintenance calendar
(`agent.collector.maintenance`); `messages`
(the en/id texts); `settings` (`[incidents]` and `[notify]` in collector.toml);
`store` (its own tables in the collector's database); `channels` (webhook,
Telegram, e-mail, WhatsApp); `outbox` (routing and durable delivery); `service`
(the loop `netprobe collect` runs in a thread). See docs/incidents.md.
"""
