"""The data budget never forgets spending when the clock steps, back or forward.

Issue 12, finding 7: a reboot without RTC followed by NTP sync took 990 MB used to 0.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from agent.throughput import budget

MB = 1_000_000
RULES = budget.Budget(monthly_bytes=1000 * MB, daily_bytes=None, reset_day=1)
TEST = 20 * MB  # one more test's estimated cost


def spend(ledger: budget.Ledger, used: int, today: dt.date) -> budget.LedgerState:
    return ledger.update(lambda s: budget.record(s, used, today, RULES.reset_day))


def test_a_clock_stepped_back_then_synced_keeps_the_months_spending(tmp_path: Path) -> None:
    ledger = budget.Ledger(str(tmp_path))
    spend(ledger, 990 * MB, dt.date(2026, 11, 20))
    assert budget.refusal(ledger.load(), RULES, dt.date(2026, 11, 20), TEST) is not None

    for booted_at in (dt.date(1970, 1, 1), dt.date(2026, 10, 31)):  # no RTC: epoch, or the last saved time
        why = budget.refusal(ledger.load(), RULES, booted_at, TEST)
        assert why is not None and "MB used since 2026-11-01" in why
        spend(ledger, 1 * MB, booted_at)  # a test that ran anyway (a technician's) still counts

    assert ledger.load().month_bytes == 992 * MB and ledger.load().period == "2026-11-01"
    synced = dt.date(2026, 11, 21)  # NTP: the real date again
    assert budget.refusal(ledger.load(), RULES, synced, TEST) is not None
    assert spend(ledger, 1 * MB, synced).month_bytes == 993 * MB


def test_a_clock_stepped_far_ahead_then_corrected_keeps_the_months_spending(tmp_path: Path) -> None:
    ledger = budget.Ledger(str(tmp_path))
    spend(ledger, 990 * MB, dt.date(2026, 11, 20))
    ahead = dt.date(2038, 1, 19)  # a bad RTC or GPS week: the same period until a later day confirms it
    assert budget.refusal(ledger.load(), RULES, ahead, TEST) is not None
    spend(ledger, 2 * MB, ahead)
    assert ledger.load().month_bytes == 992 * MB
    back = dt.date(2026, 11, 20)
    assert budget.refusal(ledger.load(), RULES, back, TEST) is not None
    assert spend(ledger, 1 * MB, back).month_bytes == 993 * MB
    assert ledger.load().period == "2026-11-01"


def test_the_calendar_still_moves_on() -> None:
    state = budget.record(budget.LedgerState(), 990 * MB, dt.date(2026, 11, 30), 1)
    december = budget.roll(state, dt.date(2026, 12, 1), 1)
    assert (december.period, december.month_bytes, december.day_bytes) == ("2026-12-01", 0, 0)
    next_day = budget.roll(state, dt.date(2026, 11, 30) + dt.timedelta(days=1), 1)
    assert next_day.day == "2026-12-01"

    # A node switched off for four months: held as the old period for a day, then the new one.
    back_on = dt.date(2027, 3, 30)
    held = budget.roll(state, back_on, 1)
    assert held.month_bytes == 990 * MB and budget.refusal(held, RULES, back_on, TEST) is not None
    confirmed = budget.roll(held, back_on + dt.timedelta(days=1), 1)
    assert (confirmed.period, confirmed.month_bytes) == ("2027-03-01", 0)
    assert budget.refusal(confirmed, RULES, back_on + dt.timedelta(days=1), TEST) is None


def test_a_ledger_written_before_this_rule_still_loads(tmp_path: Path) -> None:
    (tmp_path / budget.LEDGER_FILE).write_text(
        '{"period":"2026-11-01","day":"2026-11-20","month_bytes":990000000,"day_bytes":5,"tests":3,"last_bytes":5}'
    )
    state = budget.Ledger(str(tmp_path)).load()
    assert budget.roll(state, dt.date(1970, 1, 1), 1).month_bytes == 990 * MB
