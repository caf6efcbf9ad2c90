"""The ATM channel's vocabulary: machine kinds, operations, answers, and the words on the screen.

Pure standard library. An answer always says what happens to the card: returned, unless a business rule (lost,
stolen, fraud suspected, PIN try limit) keeps it — never because of a system error.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from kanjo.kernel.ids import name_id

REQUEST_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-61746d000000")


class MachineKind(enum.StrEnum):
    OWN = "own"  # the bank's own ATMs
    OTHER_BANK = "other_bank"  # 提携金融機関 ATMs
    CONVENIENCE = "convenience"  # コンビニ ATMs


class Operation(enum.StrEnum):
    INQUIRY = "inquiry"
    WITHDRAWAL = "withdrawal"
    DEPOSIT = "deposit"
    TRANSFER = "transfer"
    PASSBOOK = "passbook"
    TIME_DEPOSIT = "time_deposit"
    LOAN_DRAW = "loan_draw"  # card-loan cash (カードローン借入), two-phase like a withdrawal


class Result(enum.StrEnum):
    APPROVED = "approved"
    REFUSED = "refused"  # a business answer
    UNAVAILABLE = "unavailable"  # a system condition: the card is returned, the customer told what still works


class CardAction(enum.StrEnum):
    RETURN = "return"
    RETAIN = "retain"


class HoldState(enum.StrEnum):
    """Where a cash item stands in the channel's journal: a withdrawal's cash-out, or a deposit's notes in escrow."""

    AUTHORISED = "authorised"  # funds held / notes accepted in escrow: waiting for the ATM's acknowledgement
    POSTED = "posted"  # the ATM confirmed the cash left (the hold is posted) or was stored (the account credited)
    VOIDED = "voided"  # nothing was dispensed (the hold is released) or the notes were returned (nothing credited)
    IN_DOUBT = "in_doubt"  # no acknowledgement in time: nothing stays held or credited; the ATM journal decides


class JournalOutcome(enum.StrEnum):
    """What an ATM's own journal says happened (uploaded for reconciliation)."""

    DISPENSED = "dispensed"  # cash left the machine (a withdrawal or a card-loan draw)
    NOT_DISPENSED = "not_dispensed"
    NO_ANSWER = "no_answer"  # the ATM never got an answer: it dispensed nothing, or gave the notes back
    DEPOSITED = "deposited"  # a deposit's notes went from escrow into the machine
    RETURNED = "returned"  # a deposit's notes were given back to the customer


@dataclass(frozen=True, slots=True)
class Answer:
    """What the ATM is told. `fields` carries the operation's figures (balance, fee, lines…)."""

    result: Result
    code: str
    message: str
    card_action: CardAction = CardAction.RETURN
    fields: dict[str, Any] = field(default_factory=dict)

    def body(self, atm_id: str, journal_no: int, *, replayed: bool = False) -> dict[str, Any]:
        return {"atm_id": atm_id, "journal_no": journal_no, "result": self.result.value, "code": self.code,
                "message": self.message, "card_action": self.card_action.value, "replayed": replayed, **self.fields}


# What the customer reads on the screen, by answer code (the device shows `message`).
SCREEN_TEXT: dict[str, str] = {
    "ok": "お取引ありがとうございました。",
    "posted": "お取引ありがとうございました。",
    "voided": "お取引は取り消されました。お引出しはありません。",
    "in_doubt": "お取引の確認に時間がかかっています。係員が確認し、必要な場合はご連絡します。",
    "accepted": "紙幣を確認しました。",
    "credited": "お預入れありがとうございました。",
    "returned": "お預入れは取り消されました。紙幣をお返しします。",
    "insufficient_funds": "残高が不足しています。",
    "daily_limit_exceeded": "本日のお引出し限度額を超えています。",
    "wrong_pin": "暗証番号が違います。",
    "pin_locked": "暗証番号の誤りが規定回数を超えました。カードをお預かりします。窓口へお越しください。",
    "card_lost": "このカードはお取扱いできません。カードをお預かりします。窓口へお越しください。",
    "card_stolen": "このカードはお取扱いできません。カードをお預かりします。窓口へお越しください。",
    "fraud_suspected": "このカードはお取扱いできません。カードをお預かりします。窓口へお越しください。",
    "card_expired": "カードの有効期限が切れています。窓口へお越しください。",
    "card_cancelled": "このカードはお取扱いできません。",
    "unknown_card": "このカードはお取扱いできません。",
    "account_frozen": "この口座はお取扱いできません。窓口へお越しください。",
    "account_dormant": "この口座はお取扱いできません。窓口へお越しください。",
    "account_closed": "この口座は解約されています。",
    "no_card_loan": "カードローンのご契約がありません。",
    "exceeds_available": "ご利用可能額を超えています。",
    "contract_delinquent": "カードローンはご利用いただけません。窓口へお越しください。",
    "contract_suspended": "カードローンはご利用いただけません。窓口へお越しください。",
    "contract_closed": "カードローンのご契約がありません。",
    "unknown_payee": "お振込先の口座が見つかりません。",
    "unknown_transaction": "お取引が見つかりません。",
    "not_offered_here": "このATMではお取扱いできないお取引です。当行ATMをご利用ください。",
    "request_reused": "お取引番号が重複しています。",
    "hold_lapsed": "お取引の時間が過ぎました。もう一度お取引ください。",
    "unavailable": "ただいまこのお取引はご利用いただけません。カードをお返しします。",
    "busy": "ただいま混み合っています。しばらくしてからご利用ください。カードをお返しします。",
}
DEFAULT_TEXT = "このお取引はお取扱いできません。"
ACK_REUSED_TEXT = "この取引の確認は別の金額で受付済みです。"


def screen_text(code: str) -> str:
    return SCREEN_TEXT.get(code, DEFAULT_TEXT)


def approved(code: str = "ok", **fields: Any) -> Answer:
    return Answer(Result.APPROVED, code, screen_text(code), CardAction.RETURN, fields)


def refused(code: str, detail: str | None = None, *, retain: bool = False, screen: str | None = None,
            **fields: Any) -> Answer:
    """A business answer. The screen shows the code's Japanese text (and `screen`, a Japanese addition, when given);
    `detail` is the product's own words for the operator's log and journal, never shown to the customer."""
    message = screen_text(code) if screen is None else f"{screen_text(code)} {screen}"
    if detail is not None:
        fields["detail"] = detail
    return Answer(Result.REFUSED, code, message, CardAction.RETAIN if retain else CardAction.RETURN, fields)


def unavailable(code: str, detail: str, still_working: list[str], retry_after_s: float | None) -> Answer:
    fields: dict[str, Any] = {"still_working": still_working, "detail": detail}
    if retry_after_s is not None:
        fields["retry_after_s"] = retry_after_s
    return Answer(Result.UNAVAILABLE, code, screen_text(code), CardAction.RETURN, fields)


def request_id_of(atm_id: str, journal_no: int) -> int:
    """The id every product sees for this ATM transaction: the same on every retry of the message."""
    return name_id(REQUEST_NAMESPACE, f"{atm_id}:{journal_no}")


def fingerprint(operation: Operation, fields: dict[str, Any]) -> bytes:
    """What identifies a message's content, to tell a retry from a different message under the same key.
    The PIN is part of it only as a hash (it is never stored)."""
    canonical = repr(sorted((k, str(v)) for k, v in fields.items()))
    return hashlib.sha256(f"{operation.value}|{canonical}".encode()).digest()


def is_cash_amount(amount_minor: int) -> bool:
    """ATMs dispense and accept notes only: multiples of ¥1,000."""
    return amount_minor > 0 and amount_minor % 1_000 == 0
