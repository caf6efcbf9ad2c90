"""A demo bank for `make run`: a few thousand customers across branches with every product. Idempotent.

Every id derives from a name, so a second `make run` replays the same requests and changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

import asyncpg

from kanjo import cards, channels, customers, deposits, fees, loans, time_deposits
from kanjo.accounting import ensure_chart
from kanjo.bank import Bank
from kanjo.kernel.ids import name_id

DEMO_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-64656d6f0000")
CUSTOMERS = 2_000
CONCURRENCY = 100  # requests in flight while loading; the ledger batches them
BRANCHES = ("001", "101", "102", "103", "201", "301", "401", "501")
SURNAMES = (("佐藤", "ｻﾄｳ"), ("鈴木", "ｽｽﾞｷ"), ("高橋", "ﾀｶﾊｼ"), ("田中", "ﾀﾅｶ"), ("伊藤", "ｲﾄｳ"), ("渡辺", "ﾜﾀﾅﾍﾞ"),
            ("山本", "ﾔﾏﾓﾄ"), ("中村", "ﾅｶﾑﾗ"), ("小林", "ｺﾊﾞﾔｼ"), ("加藤", "ｶﾄｳ"), ("吉田", "ﾖｼﾀﾞ"), ("山田", "ﾔﾏﾀﾞ"))
GIVEN = (("太郎", "ﾀﾛｳ"), ("花子", "ﾊﾅｺ"), ("一郎", "ｲﾁﾛｳ"), ("陽子", "ﾖｳｺ"), ("健太", "ｹﾝﾀ"), ("美咲", "ﾐｻｷ"),
         ("翔", "ｼｮｳ"), ("さくら", "ｻｸﾗ"), ("大輔", "ﾀﾞｲｽｹ"), ("結衣", "ﾕｲ"), ("拓也", "ﾀｸﾔ"), ("愛", "ｱｲ"))


ATM_SEED_COUNT_MAX = 1_000  # card holders seeded per request (one page; a bench seeds page by page)
# The demo's ATMs: own machines at branches, a partner bank's and a convenience store's.
DEMO_ATMS = (("A0001", channels.MachineKind.OWN, "本店 ATM コーナー"), ("A0002", channels.MachineKind.OWN, "新宿支店"),
             ("B0001", channels.MachineKind.OTHER_BANK, "提携銀行 東京駅"),
             ("C0001", channels.MachineKind.CONVENIENCE, "コンビニ 丸の内店"))
DEMO_CARD_HOLDERS = 20
DEMO_CARD_LOAN_EVERY = 5  # the demo's card holders 1, 6, 11 and 16 also have a card loan to draw on at an ATM
CARD_LOAN_LINE_MINOR = 500_000
CARD_LOAN_RATE_PERCENT = Decimal("14.5")
CARD_LOAN_COLLECTION_DAY = 10


def demo_id(name: str) -> int:
    return name_id(DEMO_NAMESPACE, name)


async def load_demo(bank: Bank, customer_count: int = CUSTOMERS) -> dict[str, int]:
    await ensure_chart(bank.ledger)
    d, n_max = bank.deposits, customer_count
    accounts = await _in_chunks([partial(_customer_with_account, d.pool, d, n) for n in range(1, n_max + 1)])
    transfers = [partial(deposits.transfer, d, demo_id(f"transfer:{n}"), accounts[n - 1], accounts[n % n_max],
                         1_000 * (n % 7 + 1))
                 for n in range(1, n_max + 1, 5)]
    await _in_chunks(transfers)
    placed = await _in_chunks([partial(_time_deposit, bank, n, accounts[n - 1]) for n in range(4, n_max + 1, 4)])
    general = await _in_chunks([partial(_general_account, bank, n, accounts[n - 1]) for n in range(8, n_max + 1, 8)])
    loans_drawn = await _in_chunks([partial(_card_loan, bank, n, accounts[n - 1]) for n in range(6, n_max + 1, 6)])
    charged = await _in_chunks([partial(_atm_fee, bank, n, accounts[n - 1]) for n in range(3, n_max + 1, 10)])
    holders = await seed_card_holders(bank, 1, DEMO_CARD_HOLDERS, 300_000, card_loan_every=DEMO_CARD_LOAN_EVERY)
    return {"card_holders": len(holders), "card_holders_with_card_loan": sum(h["card_loan"] for h in holders),
            "customers": n_max, "accounts": len(accounts), "transfers": len(transfers),
            "time_deposits": len(placed), "general_accounts_overdrawn": len(general), "card_loans": len(loans_drawn),
            "fees": sum(1 for c in charged if c is not None)}


TERMS = (1, 3, 6, 12, 24, 36, 60, 120)
INSTRUCTIONS = tuple(time_deposits.Instruction)


async def _time_deposit(bank: Bank, n: int, account_id: int) -> int:
    """Every fourth customer: savings moved in, then a time deposit of most of them."""
    account = await deposits.get_account(bank.deposits, account_id)
    principal = 500_000 * (1 + n % 8)
    await deposits.deposit_cash(bank.deposits, demo_id(f"savings:{n}"), account_id, principal)
    d = await time_deposits.place_time_deposit(
        bank.time_deposits, demo_id(f"time-deposit:{n}"), account.customer_id, account_id, principal,
        TERMS[n % len(TERMS)], INSTRUCTIONS[n % len(INSTRUCTIONS)])
    return d.id


async def _general_account(bank: Bank, n: int, account_id: int) -> int:
    """Every eighth customer (all with a time deposit): the account becomes a 総合口座 and a withdrawal beyond
    the balance draws an automatic overdraft against the time deposit."""
    await deposits.convert_to_general_account(bank.deposits, account_id)
    posting = await deposits.withdraw_cash(bank.deposits, demo_id(f"overdrawn:{n}"), account_id,
                                           10_000 * (1 + n % 50) + 100_000)
    return posting.transfer_id


async def _card_loan(bank: Bank, n: int, account_id: int) -> int:
    """Every sixth customer: a ¥500,000 card loan at 14.5 %, collected on the 10th, partly drawn."""
    account = await deposits.get_account(bank.deposits, account_id)
    contract = await _open_card_loan(bank, f"card-loan:{n}", account.customer_id, account_id)
    to = loans.Channel.CASH if n % 12 == 0 else loans.Channel.ACCOUNT
    await loans.draw(bank.loans, demo_id(f"card-loan-draw:{n}"), contract.id, 50_000 * (1 + n % 4), to)
    return contract.id


async def _open_card_loan(bank: Bank, name: str, customer_id: int, account_id: int) -> loans.Contract:
    return await loans.open_contract(bank.loans, demo_id(name), customer_id, account_id, CARD_LOAN_LINE_MINOR,
                                     CARD_LOAN_RATE_PERCENT, CARD_LOAN_COLLECTION_DAY)


async def _atm_fee(bank: Bank, n: int, account_id: int) -> int | None:
    """Every tenth customer used a convenience-store ATM one evening: ¥220."""
    at = dt.datetime(2026, 4, 10, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    q = fees.quote(bank.fees, fees.Channel.ATM_CONVENIENCE, fees.Kind.WITHDRAWAL, 10_000, at)
    charged = await fees.charge_fee(bank.fees, demo_id(f"fee:{n}"), account_id, q, at)
    return charged.fee_id if charged else None


async def _customer_with_account(pool: asyncpg.Pool, bank: deposits.Deposits, n: int) -> int:
    surname, surname_kana = SURNAMES[n % len(SURNAMES)]
    given, given_kana = GIVEN[(n // len(SURNAMES)) % len(GIVEN)]
    customer_id = demo_id(f"customer:{n}")
    await customers.register_customer(pool, customers.NewCustomer(
        id=customer_id, kind=customers.CustomerKind.INDIVIDUAL, name_kanji=f"{surname} {given}",
        name_kana=f"{surname_kana} {given_kana}", birth_date=dt.date(1950 + n % 50, 1 + n % 12, 1 + n % 28),
        contact=customers.Contact(phone=f"090{n:08d}", email=None, postal_code=f"{100 + n % 800:03d}-{n % 10000:04d}",
                                  address=f"東京都千代田区丸の内{1 + n % 3}-{1 + n % 9}-{1 + n % 20}")))
    await customers.record_identity_verification(pool, customer_id, demo_id(f"kyc:{n}"),
                                                  customers.IdentityVerificationUpdate(
                                                      customers.IdentityVerification.VERIFIED, dt.date(2024, 4, 1)))
    account = await deposits.open_ordinary_account(bank, demo_id(f"open:{n}"), customer_id,
                                                   BRANCHES[n % len(BRANCHES)])
    await deposits.deposit_cash(bank, demo_id(f"deposit:{n}"), account.id, 10_000 * (1 + n % 50))
    return account.id


async def load_demo_atms(atm: channels.AtmChannel) -> int:
    """The demo's ATMs in the registry (idempotent)."""
    return len(await channels.register_atms(atm, list(DEMO_ATMS)))


async def load_demo_operators(teller: channels.TellerChannel, environment: str) -> list[dict[str, str]]:
    """Branch 001's operators for the demo, each with a fresh password for this run (there is no default one)."""
    return await channels.seed_teller_operators(teller, environment)


def pin_of(n: int) -> str:
    """A card holder's PIN in the demo and benches: derived from the number, never a weak one (a repeated digit
    or a run), so the cards context accepts it."""
    for step in range(10):
        pin = f"{(n * 7_919 + 1_357 + step * 113) % 10_000:04d}"
        digits = [int(c) for c in pin]
        runs = {tuple(digits[i + 1] - digits[i] for i in range(3))}
        if len(set(digits)) > 1 and runs not in ({(1, 1, 1)}, {(-1, -1, -1)}):
            return pin
    raise AssertionError("a PIN is found within ten steps")


async def seed_card_holders(bank: Bank, first: int, count: int, balance_minor: int, *,
                            card_loan_every: int | None = None) -> list[dict[str, Any]]:
    """Card holders numbered first…first+count-1: a customer, an ordinary account with `balance_minor`, a cash card
    with its PIN; holders 1, 1+N, 1+2N… (N = `card_loan_every`) also a ¥500,000 card loan. Idempotent (ids derive
    from the numbers). Returns what an ATM simulator needs to use them, `card_loan` saying who can draw on a loan."""
    if not 1 <= count <= ATM_SEED_COUNT_MAX:
        raise ValueError(f"seed 1 to {ATM_SEED_COUNT_MAX:,} card holders at a time, not {count}")
    if card_loan_every is not None and card_loan_every < 1:
        raise ValueError(f"card_loan_every is a positive number of card holders, not {card_loan_every}")
    return await _in_chunks([partial(_card_holder, bank, n, balance_minor, _has_card_loan(n, card_loan_every))
                             for n in range(first, first + count)])


def _has_card_loan(n: int, every: int | None) -> bool:
    """From the first holder on, so that any seeding from 1 has a card loan among its holders."""
    return every is not None and (n - 1) % every == 0


async def _card_holder(bank: Bank, n: int, balance_minor: int, card_loan: bool) -> dict[str, Any]:
    customer_id = demo_id(f"atm-customer:{n}")
    surname, surname_kana = SURNAMES[(n + 5) % len(SURNAMES)]
    given, given_kana = GIVEN[(n // len(SURNAMES) + 3) % len(GIVEN)]
    await customers.register_customer(bank.deposits.pool, customers.NewCustomer(
        id=customer_id, kind=customers.CustomerKind.INDIVIDUAL, name_kanji=f"{surname} {given}",
        name_kana=f"{surname_kana} {given_kana}", birth_date=dt.date(1960 + n % 40, 1 + n % 12, 1 + n % 28),
        contact=customers.Contact(phone=f"080{n:08d}", email=None, postal_code="100-0005",
                                  address=f"東京都千代田区丸の内1-{1 + n % 9}-{1 + n % 20}")))
    await customers.record_identity_verification(bank.deposits.pool, customer_id, demo_id(f"atm-kyc:{n}"),
                                                  customers.IdentityVerificationUpdate(
                                                      customers.IdentityVerification.VERIFIED, dt.date(2024, 4, 1)))
    account = await deposits.open_ordinary_account(bank.deposits, demo_id(f"atm-open:{n}"), customer_id,
                                                   BRANCHES[n % len(BRANCHES)])
    if balance_minor:
        await deposits.deposit_cash(bank.deposits, demo_id(f"atm-deposit:{n}"), account.id, balance_minor)
    pin = pin_of(n)
    issued = await cards.issue_card(bank.cards, demo_id(f"atm-card:{n}"), account.id, customer_id, pin)
    if card_loan:
        await _open_card_loan(bank, f"atm-card-loan:{n}", customer_id, account.id)
    return {"card_number": issued.card_number, "pin": pin, "account_id": str(uuid.UUID(int=account.id)),
            "customer_id": str(uuid.UUID(int=customer_id)),
            "branch_code": account.branch_code, "account_number": f"{account.account_number:07d}",
            "card_loan": card_loan}


async def _in_chunks(work: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    results: list[Any] = []
    for start in range(0, len(work), CONCURRENCY):
        results.extend(await asyncio.gather(*(step() for step in work[start:start + CONCURRENCY])))
    return results
