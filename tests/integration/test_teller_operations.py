"""Branch operations end to end through the teller routes (real PostgreSQL, ledger and hub): what the teller, the
customer and the supervisor see — customers registered and verified, accounts opened, cash in and out at the
counter, transfers with the counter's fee, time deposits, freezes, closings, cards — balances checked each time."""

from __future__ import annotations

from kanjo.cards import verify_card
from tests.integration import test_teller_fixtures
from tests.integration.test_teller_fixtures import Branch

branch = test_teller_fixtures.branch  # the fixture of these tests

CONTACT = {"phone": "03-1234-5678", "postal_code": "100-0005", "address": "東京都千代田区丸の内1-1-1"}


async def _new_customer_with_account(b: Branch) -> tuple[str, dict[str, str]]:
    status, made = await b.make("T0011", "customers", customer_kind="individual", name_kanji="山田 太郎",
                                name_kana="ﾔﾏﾀﾞ ﾀﾛｳ", birth_date="1980-04-01", contact=CONTACT)
    assert status == 200 and made["state"] == "executed", made
    customer_id = made["result"]["customer_id"]
    assert made["result"]["name_kana"] == "ヤマダ　タロウ" and made["result"]["identity_verification"] == "unverified"
    # an account needs the identity verified first (本人確認)
    status, refused = await b.make("T0011", "accounts", customer_id=customer_id)
    assert (status, refused["error"], refused["state"]) == (409, "customer_not_eligible", "refused")
    status, verified = await b.make("T0011", "identity-verifications", customer_id=customer_id,
                                    verified_on="2026-07-01")
    assert status == 200 and verified["result"]["identity_verification"] == "verified"
    status, opened = await b.make("T0011", "accounts", customer_id=customer_id)
    assert status == 200, opened
    account = opened["result"]
    assert account["branch_code"] == "001" and account["status"] == "active"  # the operator's branch
    return customer_id, {"branch_code": account["branch_code"], "account_number": account["account_number"]}


async def _a_new_customer_at_the_counter_cash_transfer_and_time_deposit(branch: Branch) -> None:
    b = branch
    customer_id, account = await _new_customer_with_account(b)
    status, paid_in = await b.make("T0011", "cash-deposits", account=account, amount_minor=500_000)
    assert status == 200 and paid_in["result"]["account"]["balance_minor"] == 500_000
    assert await b.balance(account) == 500_000
    status, paid_out = await b.make("T0011", "cash-withdrawals", account=account, amount_minor=123_456)
    assert status == 200 and paid_out["state"] == "executed"
    assert await b.balance(account) == 376_544
    # a transfer to another customer's account: the counter's fee (¥440 at ¥30,000 and over, tax included)
    payee = b.account(0)
    status, moved = await b.make("T0011", "transfers", from_account=account, to_account=payee, amount_minor=50_000)
    assert status == 200, moved
    assert (moved["result"]["fee_minor"], moved["result"]["from_account"]["balance_minor"]) == (440, 326_104)
    assert await b.balance(account) == 326_104 and await b.balance(0) == 350_000
    # more than the account holds (the fee included) is refused, and nothing moves
    status, refused = await b.make("T0011", "transfers", from_account=account, to_account=payee,
                                   amount_minor=326_000)
    assert (status, refused["error"]) == (409, "insufficient_funds")
    assert await b.balance(account) == 326_104
    status, placed = await b.make("T0011", "time-deposits", account=account, amount_minor=300_000, term_months=12)
    assert status == 200 and placed["result"]["principal_minor"] == 300_000, placed
    assert placed["result"]["matures_on"] == "2027-07-01"
    assert await b.balance(account) == 26_104
    status, view = await b.get("T0012", f"customers/{customer_id}")
    assert status == 200 and [a["balance_minor"] for a in view["accounts"]] == [26_104]
    await b.books_ok()


async def _freeze_is_immediate_and_unfreeze_waits_for_a_supervisor(branch: Branch) -> None:
    b = branch
    status, frozen = await b.make("T0011", "account-freezes", account=b.account(1), reason="振り込め詐欺の疑い")
    assert status == 200 and frozen["result"]["account"]["status"] == "frozen"
    status, refused = await b.make("T0011", "cash-withdrawals", account=b.account(1), amount_minor=10_000)
    assert (status, refused["error"]) == (409, "account_frozen")
    status, pending = await b.make("T0011", "account-unfreezes", account=b.account(1), reason="本人確認済み")
    assert (status, pending["state"], pending["approval"]) == (202, "pending", "sensitive")
    status, still = await b.make("T0011", "cash-withdrawals", account=b.account(1), amount_minor=10_000)
    assert (status, still["error"]) == (409, "account_frozen")  # nothing changed before the check
    status, done = await b.approve("S0011", pending)
    assert status == 200 and done["result"]["account"]["status"] == "active" and done["checker_id"] == "S0011"
    status, _ = await b.make("T0011", "cash-withdrawals", account=b.account(1), amount_minor=10_000)
    assert status == 200 and await b.balance(1) == 290_000
    await b.books_ok()


async def _closing_an_account_pays_the_balance_out_in_cash_once_approved(branch: Branch) -> None:
    b = branch
    _, account = await _new_customer_with_account(b)
    await b.make("T0011", "cash-deposits", account=account, amount_minor=30_000)
    status, pending = await b.make("T0011", "account-closures", account=account, reason="転居のため")
    assert (status, pending["state"]) == (202, "pending")
    assert await b.balance(account) == 30_000
    status, closed = await b.approve("S0012", pending)
    assert status == 200, closed
    assert closed["result"]["account"]["status"] == "closed" and closed["result"]["paid_out_minor"] == 30_000
    assert closed["amount_minor"] == 30_000
    status, view = await b.get("T0012", f"accounts/{account['branch_code']}/{account['account_number']}")
    assert status == 200 and view["status"] == "closed"
    status, refused = await b.make("T0011", "cash-deposits", account=account, amount_minor=1_000)
    assert (status, refused["error"]) == (409, "account_closed")
    # an account a card draws on is refused before any cash leaves it
    status, pending = await b.make("T0011", "account-closures", account=b.account(2), reason="解約")
    status, refused = await b.approve("S0011", pending)
    assert (status, refused["error"], refused["state"]) == (409, "account_in_use", "refused")
    assert await b.balance(2) == 300_000
    await b.books_ok()


async def _change_of_address_is_always_checked(branch: Branch) -> None:
    b = branch
    customer_id, _ = await _new_customer_with_account(b)
    new = {**CONTACT, "address": "大阪府大阪市北区梅田1-1-1", "postal_code": "5300001"}
    status, pending = await b.make("T0011", "contact-changes", customer_id=customer_id, contact=new)
    assert (status, pending["approval"]) == (202, "sensitive")
    _, before = await b.get("T0012", f"customers/{customer_id}")
    assert before["customer"]["contact"]["address"] == CONTACT["address"]
    status, done = await b.approve("S0011", pending)
    assert status == 200, done
    _, after = await b.get("T0012", f"customers/{customer_id}")
    assert after["customer"]["contact"]["address"] == "大阪府大阪市北区梅田1-1-1"
    assert after["customer"]["contact"]["postal_code"] == "530-0001"
    # an invalid postal code is a 422 when made: nothing waits for a checker
    status, bad = await b.make("T0011", "contact-changes", customer_id=customer_id,
                               contact={**CONTACT, "postal_code": "12-34"})
    assert (status, bad["error"]) == (422, "invalid_field")


async def _card_lost_and_pin_unlock(branch: Branch) -> None:
    b = branch
    holder = b.holders[0]
    status, view = await b.get("T0012", f"accounts/{holder['branch_code']}/{holder['account_number']}")
    _, customer = await b.get("T0012", f"customers/{view['customer_id']}")
    card_id = customer["cards"][0]["card_id"]
    cards = b.app.state.bank.cards
    for _ in range(3):  # three wrong PINs at an ATM lock the card
        try:
            await verify_card(cards, holder["card_number"], "0000" if holder["pin"] != "0000" else "1111")
        except Exception as e:
            last = e
    assert getattr(last, "code", None) == "pin_locked"
    status, pending = await b.make("T0011", "pin-unlocks", card_id=card_id, reason="本人確認のうえ")
    assert (status, pending["approval"]) == (202, "sensitive")
    status, done = await b.approve("S0011", pending)
    assert status == 200 and done["result"]["card"]["status"] == "active", done
    assert (await verify_card(cards, holder["card_number"], holder["pin"])).card_id  # usable again
    status, lost = await b.make("T0011", "card-loss-reports", card_id=card_id, reason="電話で紛失の届出")
    assert status == 200 and lost["result"]["card"]["status"] == "lost"
    status, cancelled = await b.make("T0011", "card-cancellations", card_id=card_id, reason="再発行せず解約")
    assert status == 200 and cancelled["result"]["card"]["status"] == "cancelled"
    status, unknown = await b.make("T0011", "card-loss-reports", card_id="00000000-0000-4000-8000-000000000001",
                                   reason="x")
    assert (status, unknown["error"]) == (404, "unknown_card")


async def test_a_customer_from_registration_to_closing(branch: Branch) -> None:
    await _a_new_customer_at_the_counter_cash_transfer_and_time_deposit(branch)
    await _closing_an_account_pays_the_balance_out_in_cash_once_approved(branch)


async def test_protections_and_sensitive_changes(branch: Branch) -> None:
    await _freeze_is_immediate_and_unfreeze_waits_for_a_supervisor(branch)
    await _change_of_address_is_always_checked(branch)
    await _card_lost_and_pin_unlock(branch)
