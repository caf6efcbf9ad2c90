"""The data a provider reads of a consented account, through the hub: its balance and its statement (入出金明細) by
period, a page at a time. The consent was checked by the caller (`require_consent`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from kanjo.channels.openapi import errors, store
from kanjo.channels.openapi.limits import STATEMENT_PAGE_LINES_MAX, STATEMENT_PERIOD_DAYS_MAX
from kanjo.channels.openapi.model import iso
from kanjo.channels.openapi.service import OpenApiChannel
from kanjo.deposits import balance, statement_page

STATEMENT_PAGE_LINES_DEFAULT = 50
CURSOR_DIGITS_MAX = 20


@dataclass(frozen=True, slots=True)
class StatementQuery:
    from_date: dt.date
    to_date: dt.date
    after: int
    limit: int


def statement_query(params: dict[str, str]) -> StatementQuery:
    """`from_date`, `to_date` (inclusive business dates, at most a year apart), `cursor`, `limit`."""
    unknown = sorted(set(params) - {"from_date", "to_date", "cursor", "limit"})
    if unknown:
        raise errors.invalid_request(f"unknown parameter {unknown[0][:40]!r}")
    dates = {}
    for name in ("from_date", "to_date"):
        text = params.get(name)
        if text is None:
            raise errors.invalid_request(f"{name} is required (YYYY-MM-DD)")
        try:
            dates[name] = dt.date.fromisoformat(text) if len(text) == 10 else None
        except ValueError:
            dates[name] = None
        if dates[name] is None:
            raise errors.invalid_request(f"{name} is a date: YYYY-MM-DD")
    first, last = dates["from_date"], dates["to_date"]
    assert first is not None and last is not None
    if first > last:
        raise errors.invalid_request("from_date is after to_date")
    days = (last - first).days + 1
    if days > STATEMENT_PERIOD_DAYS_MAX:
        raise errors.invalid_request(f"the period is {days} days; at most {STATEMENT_PERIOD_DAYS_MAX}",
                                     limit="openapi_statement_period_days_max", maximum=STATEMENT_PERIOD_DAYS_MAX)
    return StatementQuery(first, last, _cursor(params.get("cursor")), _limit(params.get("limit")))


def _cursor(text: str | None) -> int:
    if text is None:
        return 0
    if not (text.isascii() and text.isdigit() and len(text) <= CURSOR_DIGITS_MAX) or int(text) >= 2**63:
        raise errors.invalid_request("cursor is the next_cursor of the previous page")
    return int(text)


def _limit(text: str | None) -> int:
    if text is None:
        return STATEMENT_PAGE_LINES_DEFAULT
    if not (text.isascii() and text.isdigit() and len(text) <= 6) or not 1 <= int(text) <= STATEMENT_PAGE_LINES_MAX:
        raise errors.invalid_request(f"limit is 1 to {STATEMENT_PAGE_LINES_MAX}",
                                     limit="openapi_statement_page_lines_max", maximum=STATEMENT_PAGE_LINES_MAX)
    return int(text)


def _account(consent: store.ConsentRow) -> dict[str, str]:
    return {"branch_code": consent.branch_code, "account_number": f"{consent.account_number:07d}"}


def _account_id(consent: store.ConsentRow) -> int:
    account_id = consent.account_id
    assert account_id is not None  # an active consent names its account (a CHECK of the table)
    return account_id


async def account_balance(ch: OpenApiChannel, consent: store.ConsentRow) -> dict[str, Any]:
    account_id = _account_id(consent)
    b = await ch.call("deposits", "balance", lambda: balance(ch.deposits, account_id))
    return {"account": _account(consent), "currency": "JPY", "balance_minor": b.balance_minor,
            "available_minor": b.available_minor, "as_of": iso(ch.now())}


async def account_statement(ch: OpenApiChannel, consent: store.ConsentRow, q: StatementQuery) -> dict[str, Any]:
    account_id = _account_id(consent)
    page = await ch.call("deposits", "statement", lambda: statement_page(
        ch.deposits, account_id, after_timestamp=q.after, limit=q.limit, from_date=q.from_date, to_date=q.to_date))
    lines = [{"business_date": line.business_date.isoformat(), "description": line.description,
              "deposit_minor": line.deposit_minor, "withdrawal_minor": line.withdrawal_minor,
              "balance_minor": line.balance_minor, "pending": line.pending} for line in page.lines]
    return {"account": _account(consent), "currency": "JPY", "from_date": q.from_date.isoformat(),
            "to_date": q.to_date.isoformat(), "lines": lines,
            "next_cursor": None if page.next_after is None else str(page.next_after)}
