"""The chart of accounts: the bank's own ledger accounts (cash, suspense, income, expense, tax payable).

Customers' accounts are opened by the product contexts; these internal accounts exist once per
currency, with deterministic ids, so every process and every restart names the same ones.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from kanjo.kernel.ids import name_id
from kanjo.ledger import Account, AccountFlags, CreateAccountResult, Ledger

JPY = 392
CHART_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-636861727400")


class Kind(enum.StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    INCOME = "income"
    EXPENSE = "expense"


@dataclass(frozen=True, slots=True)
class GLAccount:
    code: int
    name_ja: str
    name_en: str
    kind: Kind


# Codes used for ledger accounts. Customer-facing product accounts use the product codes below.
CASH_VAULT = GLAccount(1001, "現金", "cash in vault", Kind.ASSET)
ATM_CASH = GLAccount(1002, "ATM現金", "cash in ATMs", Kind.ASSET)
SUSPENSE_DEBIT = GLAccount(1901, "仮払金", "suspense (debit)", Kind.ASSET)
WITHHOLDING_TAX_PAYABLE = GLAccount(2601, "預り源泉税", "withholding tax payable", Kind.LIABILITY)
SUSPENSE_CREDIT = GLAccount(2901, "仮受金", "suspense (credit)", Kind.LIABILITY)
ACCOUNT_CLOSURES = GLAccount(2991, "口座解約", "account closures (zero-amount closing holds)", Kind.LIABILITY)
FEE_INCOME = GLAccount(4001, "役務取引等収益", "fee income", Kind.INCOME)
LOAN_INTEREST_INCOME = GLAccount(4101, "貸出金利息", "loan interest income", Kind.INCOME)
DEPOSIT_INTEREST_EXPENSE = GLAccount(5001, "預金利息", "deposit interest expense", Kind.EXPENSE)

INTERNAL = (CASH_VAULT, ATM_CASH, SUSPENSE_DEBIT, WITHHOLDING_TAX_PAYABLE,
            SUSPENSE_CREDIT, ACCOUNT_CLOSURES, FEE_INCOME, LOAN_INTEREST_INCOME, DEPOSIT_INTEREST_EXPENSE)

# Product codes of customers' accounts (ledger `code`), by subject (科目).
ORDINARY_DEPOSIT = GLAccount(2001, "普通預金", "ordinary deposits", Kind.LIABILITY)  # 総合口座 too
CURRENT_DEPOSIT = GLAccount(2002, "当座預金", "current deposits", Kind.LIABILITY)  # no interest by law
TIME_DEPOSIT = GLAccount(2101, "定期預金", "time deposits", Kind.LIABILITY)
# One overdraft account per 総合口座 (its automatic overdraft, 自動貸越) and one per card-loan contract.
OVERDRAFT_RECEIVABLE = GLAccount(1301, "総合口座貸越", "overdrafts of general accounts", Kind.ASSET)
CARD_LOAN = GLAccount(1302, "カードローン", "card loans", Kind.ASSET)
PRODUCTS = (ORDINARY_DEPOSIT, CURRENT_DEPOSIT, TIME_DEPOSIT, OVERDRAFT_RECEIVABLE, CARD_LOAN)
BY_CODE = {a.code: a for a in (*INTERNAL, *PRODUCTS)}


def gl_account_id(account: GLAccount, ledger: int = JPY) -> int:
    """The ledger id of the bank's internal account `account` in currency `ledger`."""
    return name_id(CHART_NAMESPACE, f"gl:{ledger}:{account.code}")


async def ensure_chart(ledger: Ledger, currency: int = JPY) -> int:
    """Create the internal accounts that are missing; returns how many were created. Idempotent."""
    accounts = [Account(id=gl_account_id(a, currency), ledger=currency, code=a.code) for a in INTERNAL]
    outcomes = await ledger.create_accounts(accounts)
    bad = [(a.code, o.result.name) for a, o in zip(INTERNAL, outcomes, strict=True)
           if o.result not in (CreateAccountResult.OK, CreateAccountResult.EXISTS)]
    if bad:
        raise RuntimeError(f"the chart of accounts could not be created: {bad}")
    return sum(1 for o in outcomes if o.result is CreateAccountResult.OK)


GUARDED_DEPOSIT_FLAGS = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.HISTORY)
