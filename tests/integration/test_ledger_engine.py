"""The posting engine against a real PostgreSQL: money moves, holds, replays, chains, crash-free retries."""

from __future__ import annotations

import asyncio

from kanjo.kernel import new_id
from kanjo.ledger import (
    Account,
    AccountFlags,
    CreateAccountResult,
    CreateTransferResult,
    Ledger,
    PendingStatus,
    Transfer,
    TransferFlags,
)

JPY = 392
R = CreateTransferResult


async def open_accounts(ledger: Ledger, n: int, flags: int = 0) -> list[int]:
    ids = [new_id() for _ in range(n)]
    outcomes = await ledger.create_accounts([Account(id=i, ledger=JPY, code=1, flags=flags) for i in ids])
    assert [o.result for o in outcomes] == [CreateAccountResult.OK] * n
    return ids


async def test_a_transfer_moves_money_and_a_replay_changes_nothing(ledger: Ledger) -> None:
    cash, deposit = await open_accounts(ledger, 2)
    t = Transfer(id=new_id(), debit_account_id=cash, credit_account_id=deposit, amount=10_000, ledger=JPY, code=1)
    [first] = await ledger.create_transfers([t])
    assert first.result is R.OK and first.amount == 10_000 and first.timestamp > 0
    [again] = await ledger.create_transfers([_same(t)])
    assert again.result is R.EXISTS and again.timestamp == first.timestamp
    [changed] = await ledger.create_transfers([_same(t, amount=9_999)])
    assert changed.result is R.EXISTS_WITH_DIFFERENT_AMOUNT
    a_cash, a_dep = await ledger.lookup_accounts([cash, deposit])
    assert (a_cash.debits_posted, a_dep.credits_posted) == (10_000, 10_000)


async def test_overdraft_is_refused_and_the_refusal_is_remembered(ledger: Ledger) -> None:
    [cash] = await open_accounts(ledger, 1)
    [customer] = await open_accounts(ledger, 1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
    await ledger.create_transfers([Transfer(id=new_id(), debit_account_id=cash, credit_account_id=customer,
                                            amount=5_000, ledger=JPY, code=1)])
    withdrawal = Transfer(id=new_id(), debit_account_id=customer, credit_account_id=cash, amount=8_000,
                          ledger=JPY, code=1)
    [refused] = await ledger.create_transfers([withdrawal])
    assert refused.result is R.EXCEEDS_CREDITS
    await ledger.create_transfers([Transfer(id=new_id(), debit_account_id=cash, credit_account_id=customer,
                                            amount=5_000, ledger=JPY, code=1)])
    [retry] = await ledger.create_transfers([_same(withdrawal)])
    assert retry.result is R.EXCEEDS_CREDITS  # the first outcome, although funds now suffice
    [acct] = await ledger.lookup_accounts([customer])
    assert acct.credits_posted - acct.debits_posted == 10_000


async def test_two_phase_hold_post_and_void(ledger: Ledger) -> None:
    customer, atm_cash = await open_accounts(ledger, 2)
    hold = Transfer(id=new_id(), debit_account_id=customer, credit_account_id=atm_cash, amount=30_000,
                    ledger=JPY, code=2, flags=TransferFlags.PENDING, timeout=60)
    assert (await ledger.create_transfers([hold]))[0].result is R.OK
    [acct] = await ledger.lookup_accounts([customer])
    assert acct.debits_pending == 30_000 and acct.debits_posted == 0
    post = Transfer(id=new_id(), pending_id=hold.id, flags=TransferFlags.POST_PENDING_TRANSFER, amount=20_000)
    [posted] = await ledger.create_transfers([post])
    assert posted.result is R.OK and posted.amount == 20_000
    [acct] = await ledger.lookup_accounts([customer])
    assert (acct.debits_pending, acct.debits_posted) == (0, 20_000)
    void = Transfer(id=new_id(), pending_id=hold.id, flags=TransferFlags.VOID_PENDING_TRANSFER)
    assert (await ledger.create_transfers([void]))[0].result is R.PENDING_TRANSFER_ALREADY_POSTED
    [record] = await ledger.lookup_transfer_records([hold.id])
    assert record.pending_status is PendingStatus.POSTED


async def test_a_failing_linked_chain_leaves_nothing(ledger: Ledger) -> None:
    a, b = await open_accounts(ledger, 2)
    [limited] = await open_accounts(ledger, 1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
    chain = [
        Transfer(id=new_id(), debit_account_id=a, credit_account_id=b, amount=100, ledger=JPY, code=1,
                 flags=TransferFlags.LINKED),
        Transfer(id=new_id(), debit_account_id=limited, credit_account_id=b, amount=1, ledger=JPY, code=1),
    ]
    outcomes = await ledger.create_transfers(chain)
    assert [o.result for o in outcomes] == [R.LINKED_EVENT_FAILED, R.EXCEEDS_CREDITS]
    acct_a, acct_b = await ledger.lookup_accounts([a, b])
    assert acct_a.debits_posted == 0 and acct_b.credits_posted == 0
    assert await ledger.lookup_transfers([chain[0].id]) == []


async def test_concurrent_callers_share_batches_and_a_hot_account(ledger: Ledger) -> None:
    donors = await open_accounts(ledger, 50)
    [hot] = await open_accounts(ledger, 1)

    async def donate(donor: int) -> None:
        for _ in range(20):
            [o] = await ledger.create_transfers([Transfer(id=new_id(), debit_account_id=donor,
                                                          credit_account_id=hot, amount=1_000, ledger=JPY,
                                                          code=1)])
            assert o.result is R.OK

    await asyncio.gather(*(donate(d) for d in donors))
    [acct] = await ledger.lookup_accounts([hot])
    assert acct.credits_posted == 50 * 20 * 1_000


def _same(t: Transfer, **changes: object) -> Transfer:
    fields = {name: getattr(t, name) for name in Transfer.__slots__}  # type: ignore[attr-defined]
    fields.update(changes)
    return Transfer(**fields)  # type: ignore[arg-type]


async def test_replays_racing_their_originals_through_the_pipeline_apply_once(ledger: Ledger) -> None:
    """Batches overlap (one applies while the previous commits); replays that land in the next batch
    are caught by the primary key, the batch is redone with lookups, and every answer is still right."""
    accounts = await open_accounts(ledger, 20)
    [guarded] = await open_accounts(ledger, 1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
    requests = []
    for r in range(40):
        batch = [Transfer(id=new_id(), debit_account_id=accounts[(r + k) % 20],
                          credit_account_id=accounts[(r + k + 1) % 20], amount=100 + k, ledger=JPY, code=1)
                 for k in range(200)]
        batch.append(Transfer(id=new_id(), debit_account_id=guarded, credit_account_id=accounts[0], amount=1,
                              ledger=JPY, code=1))  # refused: the guarded account holds nothing
        requests.append(batch)
    first = asyncio.gather(*(ledger.create_transfers(b) for b in requests))
    again = asyncio.gather(*(ledger.create_transfers([_same(t) for t in b]) for b in requests))
    first_answers, replay_answers = await asyncio.gather(first, again)
    for answers, replays in zip(first_answers, replay_answers, strict=True):
        assert [a.result for a in answers[:-1]] in ([R.OK] * 200, [R.EXISTS] * 200)
        assert answers[-1].result is R.EXCEEDS_CREDITS and replays[-1].result is R.EXCEEDS_CREDITS
        assert {a.result for a in answers[:-1]} | {a.result for a in replays[:-1]} <= {R.OK, R.EXISTS}
        assert [a.timestamp for a in answers[:-1]] == [a.timestamp for a in replays[:-1]]
    moved = await ledger.lookup_accounts(accounts)
    assert sum(a.debits_posted for a in moved) == 40 * sum(100 + k for k in range(200))
    assert sum(a.credits_posted for a in moved) == 40 * sum(100 + k for k in range(200))  # nothing from the guarded one
