"""Passbooks against a real ledger and PostgreSQL: 未記帳, 記帳 with page turns and おまとめ, 繰越, 再発行,
and the HTTP routes through a FastAPI app built here (what a customer at an ATM and a clerk would check)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from kanjo.accounting import CASH_VAULT, JPY, ensure_chart, gl_account_id
from kanjo.deposits import (
    Action,
    Deposits,
    LineKind,
    NotFound,
    PassbookLine,
    PassbookStatus,
    Refused,
    carry_forward,
    change_status,
    deposit_cash,
    get_account,
    get_passbook,
    open_ordinary_account,
    passbook_lines,
    print_passbook,
    reissue_passbook,
    report_lost,
    statement,
    transfer,
    unposted,
    withdraw_cash,
)
from kanjo.deposits import passbook as passbook_module
from kanjo.deposits.passbook_api import router
from kanjo.kernel.limits import LimitReached
from kanjo.ledger import CreateTransferResult, Ledger, LedgerBusy, LedgerUnavailable, Transfer, TransferFlags
from kanjo.platform.http import install_error_handlers

OPENED = dt.date(2026, 4, 1)


def rid() -> int:
    return uuid.uuid4().int


async def eligible(customer_id: int) -> str | None:
    return None


@dataclass
class Bank:
    today: list[dt.date]
    deposits: Deposits

    async def account(self, cash_minor: int = 0) -> int:
        account = await open_ordinary_account(self.deposits, rid(), rid(), "001")
        if cash_minor:
            await deposit_cash(self.deposits, rid(), account.id, cash_minor)
        return account.id

    async def deposits_of(self, account_id: int, count: int, amount_minor: int) -> None:
        for _ in range(count):
            await deposit_cash(self.deposits, rid(), account_id, amount_minor)


@pytest.fixture
async def bank(ledger_dsn: str) -> AsyncIterator[Bank]:
    today = [OPENED]
    ledger = await Ledger.start(ledger_dsn, business_date=lambda: today[0])
    await ensure_chart(ledger)
    assert ledger.pool is not None
    try:
        yield Bank(today, Deposits(pool=ledger.pool, ledger=ledger, business_date=lambda: today[0],
                                   customer_check=eligible))
    finally:
        await ledger.stop()


def rows(lines: Iterable[PassbookLine]) -> list[tuple[str, int, int, int]]:
    """(摘要, お支払金額, お預り金額, 差引残高) as printed."""
    return [(x.description, x.withdrawal_minor, x.deposit_minor, x.balance_minor) for x in lines]


async def test_unposted_lines_then_a_print_advances_the_passbook(bank: Bank) -> None:
    d = bank.deposits
    account, payee = await bank.account(), await bank.account()
    await deposit_cash(d, rid(), account, 100_000)
    bank.today[0] = dt.date(2026, 4, 2)
    await withdraw_cash(d, rid(), account, 30_000)
    await transfer(d, rid(), account, payee, 20_000)
    waiting = await unposted(d, account)
    assert waiting.items == 3
    assert rows(waiting.lines) == [("現金入金", 0, 100_000, 100_000), ("現金出金", 30_000, 0, 70_000),
                                   ("振替", 20_000, 0, 50_000)]
    assert [x.business_date for x in waiting.lines] == [OPENED, dt.date(2026, 4, 2), dt.date(2026, 4, 2)]
    assert all(x.page == 0 for x in waiting.lines)  # not printed yet

    printed = await print_passbook(d, rid(), account)
    assert rows(printed.lines) == rows(waiting.lines)
    assert [(x.page, x.line) for x in printed.lines] == [(1, 1), (1, 2), (1, 3)]
    assert (printed.passbook_number, printed.items_left, printed.page_turns, printed.passbook_full) == (1, 0, 0, False)
    book = await get_passbook(d, account)
    assert (book.status, book.position.page, book.position.line, book.printed_balance_minor) == (
        PassbookStatus.ACTIVE, 1, 3, 50_000)
    assert (await unposted(d, account)).items == 0

    await deposit_cash(d, rid(), account, 8_000)
    assert rows((await unposted(d, account)).lines) == [("現金入金", 0, 8_000, 58_000)]
    again = await print_passbook(d, rid(), account)
    assert [(x.page, x.line, x.balance_minor) for x in again.lines] == [(1, 4, 58_000)]
    assert len(await passbook_lines(d, book.id)) == 4
    # the payee's passbook shows the transfer in
    assert rows((await unposted(d, payee)).lines) == [("振替", 0, 20_000, 20_000)]


async def test_a_retried_print_answers_the_same_lines_and_advances_once(bank: Bank) -> None:
    d = bank.deposits
    account = await bank.account(12_000)
    request = rid()
    first = await print_passbook(d, request, account)
    await deposit_cash(d, rid(), account, 3_000)  # arrives after the print; the retry must not print it
    retry = await print_passbook(d, request, account)
    assert not first.replayed and retry.replayed
    assert retry.lines == first.lines and rows(retry.lines) == [("現金入金", 0, 12_000, 12_000)]
    book = await get_passbook(d, account)
    assert (book.position.line, book.printed_balance_minor) == (1, 12_000)
    assert (await unposted(d, account)).items == 1
    other = await bank.account(1)
    with pytest.raises(Refused) as refused:
        await print_passbook(d, request, other)
    assert refused.value.code == "request_reused"
    with pytest.raises(Refused) as refused:  # a print's id is not a reissue's
        await reissue_passbook(d, request, account, "汚損")
    assert refused.value.code == "request_reused" and "print" in str(refused.value)
    renewal = rid()
    await report_lost(d, renewal, other, "紛失")
    with pytest.raises(Refused) as refused:
        await print_passbook(d, renewal, account)
    assert refused.value.code == "request_reused"


async def test_a_hold_prints_only_once_posted_and_a_void_never(bank: Bank) -> None:
    d = bank.deposits
    account = await bank.account(50_000)
    vault = gl_account_id(CASH_VAULT)
    hold, hold2 = rid(), rid()
    outcomes = await d.ledger.create_transfers([
        Transfer(id=hold, debit_account_id=account, credit_account_id=vault, amount=10_000, ledger=JPY, code=12,
                 flags=int(TransferFlags.PENDING)),
        Transfer(id=hold2, debit_account_id=account, credit_account_id=vault, amount=4_000, ledger=JPY, code=12,
                 flags=int(TransferFlags.PENDING))])
    assert [o.result for o in outcomes] == [CreateTransferResult.OK] * 2
    assert rows((await unposted(d, account)).lines) == [("現金入金", 0, 50_000, 50_000)]
    outcomes = await d.ledger.create_transfers([
        Transfer(id=rid(), pending_id=hold, flags=int(TransferFlags.POST_PENDING_TRANSFER)),
        Transfer(id=rid(), pending_id=hold2, flags=int(TransferFlags.VOID_PENDING_TRANSFER))])
    assert [o.result for o in outcomes] == [CreateTransferResult.OK] * 2
    printed = await print_passbook(d, rid(), account)
    assert rows(printed.lines) == [("現金入金", 0, 50_000, 50_000), ("現金出金", 10_000, 0, 40_000)]


async def test_more_than_thirty_unposted_print_as_one_omatome_line_and_the_newest(bank: Bank) -> None:
    d = bank.deposits
    account = await bank.account(100_000)
    for _ in range(34):
        await withdraw_cash(d, rid(), account, 1_000)
    waiting = await unposted(d, account)
    assert waiting.items == 35 and len(waiting.lines) == 30
    # the 6 oldest: ¥100,000 in and 5 × ¥1,000 out = ¥95,000; then 29 withdrawals of ¥1,000 down to ¥66,000
    assert rows(waiting.lines[:1]) == [("おまとめ", 5_000, 100_000, 95_000)]
    assert (waiting.lines[0].kind, waiting.lines[0].items) == (LineKind.CONSOLIDATED, 6)
    assert rows(waiting.lines[1:3]) == [("現金出金", 1_000, 0, 94_000), ("現金出金", 1_000, 0, 93_000)]
    assert rows(waiting.lines[-1:]) == [("現金出金", 1_000, 0, 66_000)]
    printed = await print_passbook(d, rid(), account)
    assert rows(printed.lines) == rows(waiting.lines)
    assert printed.lines[-1].page == 2 and printed.lines[-1].line == 6 and printed.page_turns == 1
    assert (await unposted(d, account)).items == 0
    every = await statement(d, account, limit=100)  # 入出金明細 still lists every movement
    assert len(every) == 35 and every[-1].balance_minor == 66_000


async def test_a_full_passbook_is_carried_forward_and_prints_the_rest(bank: Bank) -> None:
    d = bank.deposits
    account = await bank.account()
    for _ in range(7):  # 7 prints of 30 lines and one of 28: 238 of the 240 lines
        await bank.deposits_of(account, 30, 1_000)
        await print_passbook(d, rid(), account)
    await bank.deposits_of(account, 28, 1_000)
    await print_passbook(d, rid(), account)
    assert (await get_passbook(d, account)).position.page == 10
    await bank.deposits_of(account, 5, 2_000)
    with pytest.raises(Refused) as refused:
        await carry_forward(d, rid(), account)
    assert refused.value.code == "passbook_not_full"
    last = await print_passbook(d, rid(), account)
    assert [(x.page, x.line, x.balance_minor) for x in last.lines] == [(10, 23, 240_000), (10, 24, 242_000)]
    assert (last.items_left, last.passbook_full) == (3, True)
    with pytest.raises(Refused) as refused:
        await print_passbook(d, rid(), account)
    assert refused.value.code == "passbook_full"

    bank.today[0] = dt.date(2026, 5, 7)
    request = rid()
    new = await carry_forward(d, request, account)
    assert (new.number, new.status, new.issue_kind.value, new.issued_on) == (
        2, PassbookStatus.ACTIVE, "carry_forward", dt.date(2026, 5, 7))
    assert await carry_forward(d, request, account) == new  # a retry answers the same passbook
    [brought] = await passbook_lines(d, new.id)
    assert (brought.kind, brought.description, brought.balance_minor, brought.page, brought.line) == (
        LineKind.CARRIED_FORWARD, "繰越", 242_000, 1, 1)
    rest = await print_passbook(d, rid(), account)
    assert rest.passbook_number == 2
    assert [(x.page, x.line, x.balance_minor) for x in rest.lines] == [(1, 2, 244_000), (1, 3, 246_000),
                                                                        (1, 4, 248_000)]
    old_lines = await passbook_lines(d, last.passbook_id)
    assert len(old_lines) == 240 and old_lines[-1].balance_minor == 242_000


async def test_a_lost_passbook_stops_printing_and_its_reissue_starts_where_it_stopped(bank: Bank) -> None:
    d = bank.deposits
    account = await bank.account(30_000)
    await print_passbook(d, rid(), account)
    await withdraw_cash(d, rid(), account, 7_000)  # unposted when the passbook is lost
    lost = await report_lost(d, rid(), account, "紛失 (phoned in)")
    assert lost.status is PassbookStatus.LOST and lost.number == 1
    with pytest.raises(Refused) as refused:
        await print_passbook(d, rid(), account)
    assert refused.value.code == "passbook_lost"
    with pytest.raises(Refused) as refused:
        await report_lost(d, rid(), account, "twice")
    assert refused.value.code == "illegal_transition" and "lost" in str(refused.value)

    bank.today[0] = dt.date(2026, 4, 10)
    request = rid()
    new = await reissue_passbook(d, request, account, "紛失")
    assert (new.number, new.issue_kind.value, new.position.line, new.printed_balance_minor) == (2, "reissue", 1, 30_000)
    assert await reissue_passbook(d, request, account, "紛失") == new
    with pytest.raises(Refused) as refused:
        await reissue_passbook(d, request, await bank.account(), "紛失")
    assert refused.value.code == "request_reused"
    printed = await print_passbook(d, rid(), account)
    assert rows(printed.lines) == [("現金出金", 7_000, 0, 23_000)] and printed.lines[0].line == 2
    # a damaged passbook (汚損) is replaced without a loss report
    third = await reissue_passbook(d, rid(), account, "汚損")
    assert third.number == 3 and (await get_passbook(d, account)).id == third.id


async def test_only_an_active_account_uses_its_passbook_and_printing_is_activity(bank: Bank) -> None:
    d = bank.deposits
    account = await bank.account(5_000)
    await change_status(d, rid(), account, Action.FREEZE, "差押 (attachment order)")
    with pytest.raises(Refused) as refused:
        await print_passbook(d, rid(), account)
    assert refused.value.code == "account_frozen"
    await change_status(d, rid(), account, Action.UNFREEZE, "released")
    await change_status(d, rid(), account, Action.MARK_DORMANT, "test")
    with pytest.raises(Refused) as refused:
        await reissue_passbook(d, rid(), account, "紛失")
    assert refused.value.code == "account_dormant"
    await change_status(d, rid(), account, Action.REVIVE, "本人確認済 at the branch")
    bank.today[0] = dt.date(2027, 1, 15)
    await print_passbook(d, rid(), account)
    assert (await get_account(d, account)).last_activity_on == dt.date(2027, 1, 15)
    with pytest.raises(NotFound):
        await get_passbook(d, rid())


async def test_prints_at_the_same_moment_print_each_line_once(bank: Bank) -> None:
    d = bank.deposits
    account = await bank.account()
    await bank.deposits_of(account, 6, 1_000)
    request = rid()
    same = await asyncio.gather(*(print_passbook(d, request, account) for _ in range(3)))
    assert len({r.lines for r in same}) == 1 and len(same[0].lines) == 6
    assert sorted(r.replayed for r in same) == [False, True, True]
    await bank.deposits_of(account, 4, 1_000)
    racing = await asyncio.gather(*(print_passbook(d, rid(), account) for _ in range(3)))  # distinct requests
    printed = sorted((x for r in racing for x in r.lines), key=lambda x: x.line)
    assert [(x.line, x.balance_minor) for x in printed] == [(7, 7_000), (8, 8_000), (9, 9_000), (10, 10_000)]
    assert len(await passbook_lines(d, same[0].passbook_id)) == 10


async def test_an_account_too_busy_for_a_passbook_is_refused_by_a_named_limit(
        bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passbook_module, "SCAN_PAGE_ROWS", 4)
    monkeypatch.setattr(passbook_module, "PASSBOOK_UNPOSTED_ITEMS_SCANNED_MAX", 10)
    account = await bank.account()
    await bank.deposits_of(account, 10, 1_000)
    assert (await unposted(bank.deposits, account)).items == 10  # 4 + 4 + 2 read: within the limit
    await bank.deposits_of(account, 3, 1_000)
    with pytest.raises(LimitReached, match="passbook_unposted_items_scanned_max"):
        await print_passbook(bank.deposits, rid(), account)
    assert (await get_passbook(bank.deposits, account)).position.line == 0  # nothing printed


# -- HTTP ------------------------------------------------------------------------------------------------------

@pytest.fixture
async def client(bank: Bank) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app, busy=(LedgerBusy,), unavailable=(LedgerUnavailable,))
    app.include_router(router)
    app.state.deposits = bank.deposits
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kanjo") as c:
        yield c


async def test_the_passbook_routes(bank: Bank, client: httpx.AsyncClient) -> None:
    account = await bank.account(40_000)
    await withdraw_cash(bank.deposits, rid(), account, 15_000)
    path = f"/v1/deposits/accounts/{uuid.UUID(int=account)}/passbook"
    got = await client.get(path)
    assert got.status_code == 200, got.text
    view = got.json()
    book = view["passbook"]
    assert (book["number"], book["status"], book["page"], book["line"], book["lines_left"]) == (1, "active", 1, 0, 240)
    assert view["unposted_items"] == 2
    lines = [(x["description"], x["withdrawal"], x["deposit"], x["balance"], x["page"]) for x in view["unposted_lines"]]
    assert lines == [("現金入金", 0, 40_000, 40_000, None), ("現金出金", 15_000, 0, 25_000, None)]

    request = str(uuid.uuid4())
    printed = await client.post(f"{path}/print", json={"request_id": request})
    assert printed.status_code == 200, printed.text
    body = printed.json()
    assert [(x["page"], x["line"], x["balance"]) for x in body["lines"]] == [(1, 1, 40_000), (1, 2, 25_000)]
    assert (body["replayed"], body["items_left"], body["passbook_full"]) == (False, 0, False)
    retry = (await client.post(f"{path}/print", json={"request_id": request})).json()
    assert retry["replayed"] is True and retry["lines"] == body["lines"]

    refused = await client.post(f"{path}/carry-forward", json={"request_id": str(uuid.uuid4())})
    assert refused.status_code == 409 and refused.json()["error"] == "passbook_not_full"
    lost = await client.post(f"{path}/report-lost", json={"request_id": str(uuid.uuid4()), "reason": "紛失"})
    assert lost.status_code == 200 and lost.json()["status"] == "lost"
    refused = await client.post(f"{path}/print", json={"request_id": str(uuid.uuid4())})
    assert refused.status_code == 409 and refused.json()["error"] == "passbook_lost"
    reissued = await client.post(f"{path}/reissue", json={"request_id": str(uuid.uuid4()), "reason": "紛失"})
    assert reissued.status_code == 200, reissued.text
    assert (reissued.json()["number"], reissued.json()["line"], reissued.json()["printed_balance"]) == (2, 1, 25_000)


async def test_the_passbook_routes_refuse_bad_input_with_4xx(bank: Bank, client: httpx.AsyncClient) -> None:
    account = await bank.account(1_000)
    path = f"/v1/deposits/accounts/{uuid.UUID(int=account)}/passbook"
    unknown = f"/v1/deposits/accounts/{uuid.uuid4()}/passbook"
    cases = [
        (client.get("/v1/deposits/accounts/not-a-uuid/passbook"), 422),
        (client.get(unknown), 404),
        (client.post(f"{unknown}/print", json={"request_id": str(uuid.uuid4())}), 404),
        (client.post(f"{path}/print", json={}), 422),
        (client.post(f"{path}/print", json={"request_id": "42"}), 422),
        (client.post(f"{path}/print", json={"request_id": str(uuid.uuid4()), "extra": 1}), 422),
        (client.post(f"{path}/print", content=b"{not json", headers={"content-type": "application/json"}), 400),
        (client.post(f"{path}/reissue", json={"request_id": str(uuid.uuid4())}), 422),
        (client.post(f"{path}/reissue", json={"request_id": str(uuid.uuid4()), "reason": ""}), 422),
        (client.post(f"{path}/report-lost", json={"request_id": str(uuid.uuid4()), "reason": "x" * 201}), 422),
    ]
    for call, status in cases:
        answer = await call
        assert answer.status_code == status, answer.text
        assert "error" in answer.json()


async def test_a_named_limit_is_413(bank: Bank, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passbook_module, "SCAN_PAGE_ROWS", 2)
    monkeypatch.setattr(passbook_module, "PASSBOOK_UNPOSTED_ITEMS_SCANNED_MAX", 3)
    account = await bank.account()
    await bank.deposits_of(account, 4, 500)
    answer = await client.get(f"/v1/deposits/accounts/{uuid.UUID(int=account)}/passbook")
    assert answer.status_code == 413 and answer.json()["limit"] == "passbook_unposted_items_scanned_max"
