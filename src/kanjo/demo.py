"""A small demo bank on the ledger (JPY): a chart of accounts, customers' deposits, ATM holds. Idempotent."""

from __future__ import annotations

import uuid

from kanjo.ledger import Account, AccountFlags, Ledger, Transfer, TransferFlags

JPY = 392
DEMO_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-64656d6f0000")
CUSTOMERS = 40

# chart of accounts (codes)
CASH_VAULT, ATM_CASH, CUSTOMER_DEPOSIT, FEE_INCOME = 1001, 1002, 2001, 4001


def demo_id(name: str) -> int:
    """Deterministic ids, so a second `make run` replays the same events and changes nothing."""
    return uuid.uuid5(DEMO_NAMESPACE, name).int


async def load_demo(ledger: Ledger) -> dict[str, int]:
    guarded = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags.HISTORY)
    accounts = [
        Account(id=demo_id("bank:cash-vault"), ledger=JPY, code=CASH_VAULT),
        Account(id=demo_id("bank:atm-cash"), ledger=JPY, code=ATM_CASH),
        Account(id=demo_id("bank:fee-income"), ledger=JPY, code=FEE_INCOME,
                flags=0),
        *[Account(id=demo_id(f"customer:{n}:ordinary"), ledger=JPY, code=CUSTOMER_DEPOSIT, flags=guarded,
                  user_data_64=n) for n in range(1, CUSTOMERS + 1)],
    ]
    created = await ledger.create_accounts(accounts)
    vault, atm, fees = demo_id("bank:cash-vault"), demo_id("bank:atm-cash"), demo_id("bank:fee-income")
    transfers: list[Transfer] = [
        Transfer(id=demo_id("float:atm"), debit_account_id=atm, credit_account_id=vault, amount=50_000_000,
                 ledger=JPY, code=10),
    ]
    for n in range(1, CUSTOMERS + 1):
        deposit = demo_id(f"customer:{n}:ordinary")
        transfers.append(Transfer(id=demo_id(f"teller-deposit:{n}"), debit_account_id=vault,
                                  credit_account_id=deposit, amount=100_000 * n, ledger=JPY, code=20))
        if n % 3 == 0:  # an ATM withdrawal: hold, then post on the ATM's acknowledgement
            hold = demo_id(f"atm-hold:{n}")
            transfers.append(Transfer(id=hold, debit_account_id=deposit, credit_account_id=atm, amount=20_000,
                                      ledger=JPY, code=30, flags=int(TransferFlags.PENDING), timeout=60))
            transfers.append(Transfer(id=demo_id(f"atm-post:{n}"), pending_id=hold,
                                      flags=int(TransferFlags.POST_PENDING_TRANSFER)))
            transfers.append(Transfer(id=demo_id(f"atm-fee:{n}"), debit_account_id=deposit,
                                      credit_account_id=fees, amount=110, ledger=JPY, code=40))
        if n % 5 == 0 and n < CUSTOMERS:
            transfers.append(Transfer(id=demo_id(f"transfer:{n}->{n + 1}"), debit_account_id=deposit,
                                      credit_account_id=demo_id(f"customer:{n + 1}:ordinary"), amount=12_345,
                                      ledger=JPY, code=50))
    outcomes = await ledger.create_transfers(transfers)
    return {
        "accounts_created": sum(1 for o in created if o.result.name == "OK"),
        "transfers_created": sum(1 for o in outcomes if o.result.name == "OK"),
        "transfers_already_there": sum(1 for o in outcomes if o.result.name == "EXISTS"),
    }
