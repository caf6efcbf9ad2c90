"""The ATM simulator's device logic against a tiny in-test bank on 127.0.0.1 that answers the protocol trivially
(approved, refused, 503, 500, late answers): resends keep the journal number, the card comes back on every system
error, it is retained only on a business answer that says so, latency runs from the schedule, a seed fixes the
requests, faults and journal uploads behave as the plan says. Tests the device, not the bank."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import pytest

from kanjo.sim import DEFAULT_MIX, Card, FaultPlan, Fleet, FleetConfig, JournalEntry, Outcome

CARDS = tuple(Card(f"4980{i:012d}", f"{1000 + i:04d}", f"acct-{i}", "001", f"{1000000 + i}", i % 5 == 0)
              for i in range(20))
WITHDRAWALS_ONLY = (("withdrawal", 1.0),)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    delay_s: float = 0.0


Script = Callable[[str, dict[str, Any], int], Answer]  # (path, body, how often this exact message came before)


def protocol_answer(path: str, body: dict[str, Any], seen: int) -> Answer:
    """The trivial bank: every operation approved, every ack posted, every journal entry but deposits matched."""
    common = {"atm_id": body["atm_id"], "journal_no": body.get("journal_no"), "result": "approved", "code": "ok",
              "message": "", "card_action": "return", "replayed": seen > 0}
    if path in ("/atm/v1/withdrawal", "/atm/v1/loan-draw"):
        return Answer(body={**common, "dispense_minor": body["amount_minor"], "fee_minor": 0})
    if path in ("/atm/v1/withdrawal/ack", "/atm/v1/loan-draw/ack"):
        return Answer(body={**common, "code": "posted" if body["dispensed_minor"] else "voided"})
    if path == "/atm/v1/deposit":
        return Answer(body={**common, "code": "accepted", "fee_minor": 0})
    if path == "/atm/v1/deposit/ack":
        return Answer(body={**common, "code": "credited" if body["stored_minor"] else "returned"})
    if path == "/atm/v1/journal":  # as the channel answers it: counts, and the breaks named
        deposits = [e for e in body["entries"] if e["operation"] == "deposit"]
        return Answer(body={"atm_id": body["atm_id"], "matched": len(body["entries"]) - len(deposits),
                            "corrected": 0, "not_applicable": 0, "breaks": [{"journal_no": e["journal_no"]}
                                                                            for e in deposits]})
    return Answer(body=common)


class FakeBank:
    """A keep-alive HTTP/1.1 server answering by a script; it records every request it read, in order."""

    def __init__(self, script: Script = protocol_answer) -> None:
        self.script = script
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._seen: collections.Counter[bytes] = collections.Counter()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:  # some may still be sleeping on a late answer nobody waits for
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._answer(reader, writer)
        except asyncio.CancelledError:
            pass  # stopped by `stop`: asyncio's stream callback would log a cancelled handler as an error
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                raw = await reader.readexactly(length)
                body = orjson.loads(raw)
                self.requests.append((path, body))
                seen = self._seen[path.encode() + raw]
                self._seen[path.encode() + raw] += 1
                answer = self.script(path, body, seen)
                if answer.delay_s:
                    await asyncio.sleep(answer.delay_s)
                payload = orjson.dumps(answer.body)
                writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (answer.status, len(payload), payload))
                await writer.drain()


@contextlib.asynccontextmanager
async def bank(script: Script = protocol_answer) -> AsyncIterator[FakeBank]:
    server = FakeBank(script)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def config(**overrides: Any) -> FleetConfig:
    base = FleetConfig(atms=2, withdrawals_per_s=20.0, seconds=0.2, cards=CARDS, seed=7, request_timeout_ms=300,
                       retry_backoff_ms=10, mix=WITHDRAWALS_ONLY)
    return replace(base, **overrides)


async def run(cfg: FleetConfig, server: FakeBank) -> tuple[Fleet, dict[str, Any]]:
    fleet = Fleet(cfg)
    report = await fleet.run("127.0.0.1", server.port)
    return fleet, report


def entries(fleet: Fleet) -> list[JournalEntry]:
    return [entry for atm in fleet.atms for entry in atm.journal]


def by_journal_no(requests: list[tuple[str, dict[str, Any]]]) -> dict[tuple[str, int], list[tuple[str, Any]]]:
    grouped: dict[tuple[str, int], list[tuple[str, Any]]] = collections.defaultdict(list)
    for path, body in requests:
        grouped[body["atm_id"], body["journal_no"]].append((path, body))
    return grouped


# -- the happy path and the two-phase cash-out -------------------------------------------------------

async def test_a_withdrawal_is_authorised_dispensed_and_acknowledged_under_one_journal_number() -> None:
    async with bank() as server:
        fleet, report = await run(config(), server)
    assert report["transactions"] == {"scheduled": 4, "completed": 4, "abandoned": 0, "unfinished": 0}
    for (atm_id, journal_no), messages in by_journal_no(server.requests).items():
        assert [path for path, _ in messages] == ["/atm/v1/withdrawal", "/atm/v1/withdrawal/ack"]
        auth, ack = messages[0][1], messages[1][1]
        assert ack == {"atm_id": atm_id, "journal_no": journal_no, "dispensed_minor": auth["amount_minor"]}
        assert auth["card"]["pin"] == next(c.pin for c in CARDS if c.number == auth["card"]["number"])
    assert all(e.outcome is Outcome.DISPENSED and e.ack_code == "posted" for e in entries(fleet))
    assert report["system_errors"] == 0 and report["cards_retained"] == 0
    assert report["withdrawals"]["ack_codes"] == {"posted": 4}
    assert report["latency_ms"]["withdrawal_end_to_end"]["count"] == 4
    assert report["offered"]["withdrawals_per_s"] == 20.0
    assert sum(row[2] for row in report["per_atm"]["rows"]) == 4


async def test_a_dispense_failure_acknowledges_zero_and_the_journal_says_not_dispensed() -> None:
    async with bank() as server:
        fleet, report = await run(config(dispense_failure_share=1.0, dispense_delay_ms=200), server)
    acks = [body for path, body in server.requests if path.endswith("/ack")]
    assert acks and all(ack["dispensed_minor"] == 0 for ack in acks)
    assert {(e.outcome, e.dispensed_minor, e.ack_code) for e in entries(fleet)} == {
        (Outcome.NOT_DISPENSED, 0, "voided")}
    assert report["withdrawals"]["dispense_failures"] == 4 and report["withdrawals"]["dispensed"] == 0
    # end to end leaves the dispensing out: two fast answers do not add up to the dispenser's 200 ms
    assert report["latency_ms"]["withdrawal_end_to_end"]["max"] < 200


# -- resends keep the journal number -------------------------------------------------------------------

async def test_a_resend_after_a_timeout_keeps_the_journal_number_and_the_bytes() -> None:
    def late_first_answer(path: str, body: dict[str, Any], seen: int) -> Answer:
        answer = protocol_answer(path, body, seen)
        return replace(answer, delay_s=0.5) if path == "/atm/v1/withdrawal" and seen == 0 else answer

    async with bank(late_first_answer) as server:
        fleet, report = await run(config(seconds=0.05, atms=1), server)
    (key, messages), = by_journal_no(server.requests).items()
    assert [path for path, _ in messages] == ["/atm/v1/withdrawal", "/atm/v1/withdrawal",
                                              "/atm/v1/withdrawal/ack"]
    assert messages[0][1] == messages[1][1]  # the same message, the same journal number
    assert report["operations"]["resends_by_message"] == {"withdrawal": 1}
    [entry] = entries(fleet)
    assert (entry.journal_no, entry.outcome) == (key[1], Outcome.DISPENSED)
    assert entry.latency_ms is not None and entry.latency_ms >= 300  # the timeout is part of what the customer waits


async def test_no_answer_at_all_returns_the_card_and_releases_the_hold_with_a_zero_ack() -> None:
    def silent_authorisation(path: str, body: dict[str, Any], seen: int) -> Answer:
        answer = protocol_answer(path, body, seen)
        if path == "/atm/v1/withdrawal":
            return replace(answer, delay_s=1.0)
        return Answer(body={**answer.body, "result": "refused", "code": "unknown_transaction"})

    async with bank(silent_authorisation) as server:
        fleet, report = await run(config(seconds=0.05, atms=1, retries_max=1, request_timeout_ms=100), server)
    paths = [path for path, _ in server.requests]
    assert paths == ["/atm/v1/withdrawal", "/atm/v1/withdrawal", "/atm/v1/withdrawal/ack"]
    ack = server.requests[-1][1]
    assert ack["dispensed_minor"] == 0 and ack["journal_no"] == server.requests[0][1]["journal_no"]
    [entry] = entries(fleet)
    assert (entry.outcome, entry.card_action, entry.ack_code) == (Outcome.NO_ANSWER, "return", "unknown_transaction")
    assert entry.upload_outcome() == "no_answer"
    assert report["system_errors_by_operation"] == {"withdrawal": 1}
    assert report["operations"]["by_operation"]["withdrawal"]["results"] == {"no_answer/timeout": 1}
    assert report["operations"]["unanswered_by_message"] == {"withdrawal": 1}


DEPOSITS_ONLY = (("withdrawal", 1.0), ("deposit", 99.0))  # a rate is given in withdrawals: 20 operations/s at 0.2
LOAN_DRAWS_ONLY = (("withdrawal", 1.0), ("loan_draw", 99.0))
BORROWERS = {c.number for c in CARDS if c.card_loan}


async def test_a_loan_draw_is_a_cash_out_on_its_own_paths_from_cards_with_a_card_loan_only() -> None:
    async with bank() as server:
        fleet, report = await run(config(mix=LOAN_DRAWS_ONLY, withdrawals_per_s=0.2), server)
    assert report["transactions"] == {"scheduled": 4, "completed": 4, "abandoned": 0, "unfinished": 0}
    for (atm_id, journal_no), messages in by_journal_no(server.requests).items():
        assert [path for path, _ in messages] == ["/atm/v1/loan-draw", "/atm/v1/loan-draw/ack"]
        auth, ack = messages[0][1], messages[1][1]
        assert auth.keys() == {"atm_id", "journal_no", "card", "amount_minor"} and auth["card"]["pin"]
        assert auth["card"]["number"] in BORROWERS and 10_000 <= auth["amount_minor"] <= 50_000
        assert ack == {"atm_id": atm_id, "journal_no": journal_no, "dispensed_minor": auth["amount_minor"]}
    assert {(e.operation, e.outcome, e.ack_code, e.upload_outcome()) for e in entries(fleet)} == {
        ("loan_draw", Outcome.DISPENSED, "posted", "dispensed")}
    drawn_minor = sum(e.dispensed_minor for e in entries(fleet))
    assert report["loan_draws"] == {"dispensed": 4, "dispensed_minor": drawn_minor, "dispense_failures": 0,
                                    "ack_codes": {"posted": 4}}
    assert report["withdrawals"] == {"dispensed": 0, "dispensed_minor": 0, "dispense_failures": 0, "ack_codes": {}}
    assert report["latency_ms"]["withdrawal_end_to_end"]["count"] == 0  # loan draws have their own messages
    assert report["latency_ms"]["loan_draw"]["count"] == report["latency_ms"]["loan_draw_ack"]["count"] == 4
    async with bank() as server:
        totals = await fleet.journal_upload("127.0.0.1", server.port)
    sent = [e for path, body in server.requests if path == "/atm/v1/journal" for e in body["entries"]]
    assert {(e["operation"], e["outcome"]) for e in sent} == {("loan_draw", "dispensed")}
    assert sum(e["amount_minor"] for e in sent) == drawn_minor
    assert (totals["entries"], totals["matched"], totals["breaks"]) == (4, 4, 0)


async def test_a_loan_draw_that_dispenses_nothing_or_hears_nothing_acknowledges_zero() -> None:
    def silent_first(path: str, body: dict[str, Any], seen: int) -> Answer:
        answer = protocol_answer(path, body, seen)
        return replace(answer, delay_s=1.0) if path == "/atm/v1/loan-draw" and body["journal_no"] == 1 else answer

    async with bank(silent_first) as server:
        fleet, report = await run(config(atms=1, mix=LOAN_DRAWS_ONLY, withdrawals_per_s=0.1, retries_max=0,
                                         request_timeout_ms=100, dispense_failure_share=1.0), server)
    acks = [body for path, body in server.requests if path == "/atm/v1/loan-draw/ack"]
    assert [ack["dispensed_minor"] for ack in acks] == [0, 0]  # the unanswered one releases a hold it never heard of
    first, second = entries(fleet)
    assert (first.outcome, first.upload_outcome(), first.ack_code) == (Outcome.NO_ANSWER, "no_answer", "voided")
    assert (second.outcome, second.upload_outcome(), second.ack_code) == (
        Outcome.NOT_DISPENSED, "not_dispensed", "voided")
    assert report["loan_draws"]["dispense_failures"] == 1 and report["loan_draws"]["ack_codes"] == {"voided": 2}
    assert report["system_errors_by_operation"] == {"loan_draw": 1}


async def test_a_deposit_is_accepted_then_stored_and_acknowledged_under_one_journal_number() -> None:
    async with bank() as server:
        fleet, report = await run(config(atms=1, seconds=0.05, mix=DEPOSITS_ONLY, withdrawals_per_s=0.2), server)
    [(first, accept), (second, ack)] = server.requests
    assert (first, second) == ("/atm/v1/deposit", "/atm/v1/deposit/ack")
    assert ack == {"atm_id": accept["atm_id"], "journal_no": accept["journal_no"],
                   "stored_minor": accept["amount_minor"]}
    [entry] = entries(fleet)
    assert (entry.outcome, entry.ack_code, entry.upload_outcome()) == (Outcome.DEPOSITED, "credited", "deposited")
    assert report["deposits"] == {"stored": 1, "stored_minor": accept["amount_minor"],
                                  "returned_after_acceptance": 0, "ack_codes": {"credited": 1}}


async def test_a_deposit_jam_gives_the_notes_back_and_acknowledges_zero() -> None:
    async with bank() as server:
        fleet, report = await run(config(atms=1, seconds=0.05, mix=DEPOSITS_ONLY, withdrawals_per_s=0.2,
                                         dispense_failure_share=1.0),
                                  server)
    assert server.requests[-1] == ("/atm/v1/deposit/ack", {"atm_id": server.requests[0][1]["atm_id"],
                                                           "journal_no": server.requests[0][1]["journal_no"],
                                                           "stored_minor": 0})
    [entry] = entries(fleet)
    assert (entry.outcome, entry.ack_code, entry.upload_outcome()) == (Outcome.RETURNED, "returned", "returned")
    assert report["deposits"]["returned_after_acceptance"] == 1 and report["deposits"]["stored"] == 0


async def test_a_deposit_without_an_answer_gives_the_notes_back_and_says_so() -> None:
    def silent(path: str, body: dict[str, Any], seen: int) -> Answer:
        answer = protocol_answer(path, body, seen)
        return replace(answer, delay_s=1.0) if path == "/atm/v1/deposit" else answer

    async with bank(silent) as server:
        fleet, report = await run(config(seconds=0.05, atms=1, retries_max=1, request_timeout_ms=100,
                                         mix=DEPOSITS_ONLY, withdrawals_per_s=0.2), server)
    assert [path for path, _ in server.requests] == ["/atm/v1/deposit", "/atm/v1/deposit", "/atm/v1/deposit/ack"]
    assert server.requests[-1][1]["stored_minor"] == 0  # whatever the bank decided, nothing was stored
    [entry] = entries(fleet)
    assert (entry.outcome, entry.card_action, entry.upload_outcome()) == (Outcome.NO_ANSWER, "return", "no_answer")
    assert report["deposits"]["stored"] == 0 and report["system_errors_by_operation"] == {"deposit": 1}


# -- the card --------------------------------------------------------------------------------------------

async def test_a_non_200_answer_returns_the_card_even_when_it_says_retain() -> None:
    def unavailable(path: str, body: dict[str, Any], seen: int) -> Answer:
        return Answer(503, {"atm_id": body["atm_id"], "journal_no": body["journal_no"], "result": "unavailable",
                            "code": "busy", "card_action": "retain", "still_working": ["inquiry"]})

    async with bank(unavailable) as server:
        fleet, report = await run(config(retries_max=1), server)
    # a clean 503 is the answer the customer sees: not resent, and nothing to acknowledge
    assert [path for path, _ in server.requests] == ["/atm/v1/withdrawal"] * 4
    assert {(e.outcome, e.card_action, e.code) for e in entries(fleet)} == {
        (Outcome.SYSTEM_ERROR, "return", "status_503")}
    assert report["cards_retained"] == 0 and report["cards_retained_by_system_error"] == 0
    assert report["retain_asked_on_system_error"] == 4
    assert report["system_errors_by_operation"] == {"withdrawal": 4}
    assert report["operations"]["by_operation"]["withdrawal"]["results"] == {"unavailable/busy": 4}


async def test_a_bare_5xx_is_resent_under_the_same_key_then_the_card_comes_back() -> None:
    def broken(path: str, body: dict[str, Any], seen: int) -> Answer:
        if path == "/atm/v1/withdrawal":
            return Answer(502, {"detail": "bad gateway", "card_action": "retain"})
        return Answer(body={**protocol_answer(path, body, seen).body, "result": "refused",
                            "code": "unknown_transaction"})

    async with bank(broken) as server:
        fleet, report = await run(config(retries_max=2), server)
    for messages in by_journal_no(server.requests).values():
        assert [path for path, _ in messages] == ["/atm/v1/withdrawal"] * 3 + ["/atm/v1/withdrawal/ack"]
        assert messages[0][1] == messages[1][1] == messages[2][1]
        assert messages[3][1]["dispensed_minor"] == 0  # the outcome is unknown: release any hold now
    assert {(e.outcome, e.card_action, e.code) for e in entries(fleet)} == {
        (Outcome.SYSTEM_ERROR, "return", "status_502")}
    assert report["retain_asked_on_system_error"] == 4 and report["cards_retained"] == 0
    assert report["operations"]["resends_by_message"] == {"withdrawal": 8}


async def test_an_acknowledgement_is_resent_even_on_a_clean_503() -> None:
    def busy_once(path: str, body: dict[str, Any], seen: int) -> Answer:
        if path == "/atm/v1/withdrawal/ack" and seen == 0:
            return Answer(503, {"atm_id": body["atm_id"], "journal_no": body["journal_no"], "result": "unavailable",
                                "code": "busy", "card_action": "return", "retry_after_s": 0.01})
        return protocol_answer(path, body, seen)

    async with bank(busy_once) as server:
        fleet, report = await run(config(atms=1, seconds=0.05), server)
    assert [path for path, _ in server.requests] == ["/atm/v1/withdrawal"] + ["/atm/v1/withdrawal/ack"] * 2
    [entry] = entries(fleet)
    assert (entry.outcome, entry.ack_code) == (Outcome.DISPENSED, "posted")
    assert report["system_errors"] == 0


async def test_an_unreadable_answer_returns_the_card_and_is_not_resent() -> None:
    def garbage(path: str, body: dict[str, Any], seen: int) -> Answer:
        if path == "/atm/v1/withdrawal":
            return Answer(200, {"hello": "world"})
        return protocol_answer(path, body, seen)

    async with bank(garbage) as server:
        fleet, _ = await run(config(atms=1, seconds=0.05), server)
    assert [path for path, _ in server.requests] == ["/atm/v1/withdrawal", "/atm/v1/withdrawal/ack"]
    [entry] = entries(fleet)
    assert (entry.outcome, entry.card_action, entry.code) == (Outcome.SYSTEM_ERROR, "return", "malformed")


async def test_a_card_is_retained_only_when_a_business_answer_says_retain() -> None:
    def pin_rules(path: str, body: dict[str, Any], seen: int) -> Answer:
        answer = protocol_answer(path, body, seen)
        if path != "/atm/v1/withdrawal":
            return answer
        if body["journal_no"] % 2:
            return Answer(body={**answer.body, "result": "refused", "code": "wrong_pin"})
        return Answer(body={**answer.body, "result": "refused", "code": "pin_locked", "card_action": "retain"})

    async with bank(pin_rules) as server:
        fleet, report = await run(config(seconds=0.5, wrong_pin_share=1.0), server)
    auths = [body for path, body in server.requests if path == "/atm/v1/withdrawal"]
    assert all(body["card"]["pin"] != next(c.pin for c in CARDS if c.number == body["card"]["number"])
               for body in auths)
    for entry in entries(fleet):
        assert entry.outcome is Outcome.REFUSED
        assert entry.card_action == ("return" if entry.journal_no % 2 else "retain")
    retained = sum(1 for e in entries(fleet) if e.card_action == "retain")
    assert retained > 0
    assert report["cards_retained"] == retained and report["cards_retained_by_code"] == {"pin_locked": retained}
    assert report["cards_retained_by_system_error"] == 0 and report["system_errors"] == 0
    assert not [path for path, _ in server.requests if path.endswith("/ack")]  # refused: nothing to acknowledge


async def test_a_retain_on_an_approval_is_counted_as_retained_by_system_error() -> None:
    def careless(path: str, body: dict[str, Any], seen: int) -> Answer:
        answer = protocol_answer(path, body, seen)
        return Answer(body={**answer.body, "card_action": "retain"}) if path == "/atm/v1/withdrawal" else answer

    async with bank(careless) as server:
        _, report = await run(config(atms=1, seconds=0.05), server)
    assert report["cards_retained_by_system_error"] == 1  # the bench's pass criterion catches such a bank


# -- latency and determinism ---------------------------------------------------------------------------

async def test_latency_runs_from_the_scheduled_send_not_from_when_a_connection_was_free() -> None:
    def slow_authorisation(path: str, body: dict[str, Any], seen: int) -> Answer:
        answer = protocol_answer(path, body, seen)
        return replace(answer, delay_s=0.3) if path == "/atm/v1/withdrawal" else answer

    async with bank(slow_authorisation) as server:
        fleet, report = await run(config(atms=2, withdrawals_per_s=10.0, seconds=0.2, connections=1,
                                         request_timeout_ms=2_000, seed=3), server)
    # two withdrawals 100 ms apart, one connection: the second waits for it from 0.1 s to 0.3 s, then 0.3 s more
    assert report["latency_ms"]["withdrawal"]["count"] == 2
    assert report["latency_ms"]["withdrawal"]["max"] >= 450
    assert report["latency_ms"]["withdrawal_end_to_end"]["max"] >= 450
    assert max(e.latency_ms or 0 for e in entries(fleet)) >= 450


def per_atm_requests(requests: list[tuple[str, dict[str, Any]]]) -> dict[str, list[tuple[str, Any]]]:
    grouped: dict[str, list[tuple[str, Any]]] = collections.defaultdict(list)
    for path, body in requests:
        grouped[body["atm_id"]].append((path, body))
    return dict(grouped)


async def test_the_same_seed_sends_the_same_requests() -> None:
    # a device timeout far above any stall of a busy test machine: a resend after a slow moment would be timing, and
    # this is about the plan
    mixed = config(atms=10, withdrawals_per_s=120.0, seconds=0.5, mix=DEFAULT_MIX, wrong_pin_share=0.2,
                   dispense_failure_share=0.2, request_timeout_ms=5_000)
    seen = []
    for seed in (11, 11, 12):
        async with bank() as server:
            _, report = await run(replace(mixed, seed=seed), server)
        # nobody walked away: timing did not change the plan
        assert report["transactions"]["completed"] == mixed.transactions
        seen.append(per_atm_requests(server.requests))
    assert seen[0] == seen[1]
    assert seen[0] != seen[2]
    paths = {path for requests in seen[0].values() for path, _ in requests}
    assert paths == {"/atm/v1/withdrawal", "/atm/v1/withdrawal/ack", "/atm/v1/inquiry", "/atm/v1/deposit",
                     "/atm/v1/deposit/ack", "/atm/v1/transfer", "/atm/v1/time-deposit", "/atm/v1/loan-draw",
                     "/atm/v1/loan-draw/ack"}
    for requests in seen[0].values():
        numbers = [body["journal_no"] for path, body in requests if not path.endswith("/ack")]
        assert numbers == sorted(set(numbers))  # increasing per ATM, never reused


# -- the fault plan --------------------------------------------------------------------------------------

async def test_lost_answers_were_processed_by_the_bank_and_resent_under_the_same_key() -> None:
    async with bank() as server:
        fleet, report = await run(config(atms=1, seconds=0.05, retries_max=1, ack_retries_max=1,
                                         request_timeout_ms=100, faults=FaultPlan(lose_answer_share=1.0)), server)
    paths = [path for path, _ in server.requests]
    assert paths == ["/atm/v1/withdrawal"] * 2 + ["/atm/v1/withdrawal/ack"] * 2  # zero ack after no answer
    assert len({body["journal_no"] for _, body in server.requests}) == 1
    [entry] = entries(fleet)
    assert (entry.outcome, entry.card_action, entry.ack_code) == (Outcome.NO_ANSWER, "return", "no_answer")
    assert report["faults"]["answers_lost"] == 4
    assert report["system_errors_by_operation"] == {"withdrawal": 2}  # the authorisation and its zero ack


async def test_dropped_requests_and_a_link_down_reach_nothing() -> None:
    for faults in (FaultPlan(drop_request_share=1.0), FaultPlan(link_down_s=((0.0, 60.0),))):
        async with bank() as server:
            fleet, report = await run(config(atms=2, seconds=0.1, retries_max=0, ack_retries_max=0,
                                             request_timeout_ms=50, faults=faults), server)
        assert server.requests == []
        assert {(e.outcome, e.card_action) for e in entries(fleet)} == {(Outcome.NO_ANSWER, "return")}
        assert report["system_errors"] == 2 * 2  # each withdrawal and its zero ack
        assert report["cards_retained"] == 0


async def test_a_delay_longer_than_the_timeout_is_a_timeout_and_a_short_one_is_latency() -> None:
    async with bank() as server:
        _, slow = await run(config(atms=1, seconds=0.05, retries_max=0, ack_retries_max=0, request_timeout_ms=100,
                                   faults=FaultPlan(delay_ms=200)), server)
    assert server.requests == [] and slow["faults"]["requests_delayed"] == 2
    async with bank() as server:
        _, fast = await run(config(atms=1, seconds=0.05, faults=FaultPlan(delay_ms=40)), server)
    assert fast["system_errors"] == 0
    assert fast["latency_ms"]["withdrawal_end_to_end"]["max"] >= 80  # two messages, 40 ms each way out


async def test_customers_walk_away_from_a_busy_machine_beyond_the_queue_bound() -> None:
    def slow(path: str, body: dict[str, Any], seen: int) -> Answer:
        return replace(protocol_answer(path, body, seen), delay_s=0.2)

    async with bank(slow) as server:
        fleet, report = await run(config(atms=1, withdrawals_per_s=50.0, seconds=0.1, request_timeout_ms=1_000,
                                         customers_waiting_per_atm_max=1), server)
    assert report["transactions"]["scheduled"] == 5
    assert report["transactions"]["abandoned"] == 3 and fleet.atms[0].abandoned == 3  # one served, one waited
    assert report["transactions"]["completed"] == 2 and report["transactions"]["unfinished"] == 0


# -- the journal -----------------------------------------------------------------------------------------

async def test_journal_upload_pages_the_cash_entries_and_sums_the_answers() -> None:
    fleet = Fleet(config(atms=2))
    atm = fleet.atms[0]
    for n in range(1, 2_501):
        atm.issue(n)
        atm.record(JournalEntry(n, "withdrawal", 10_000, "4980********0001", Outcome.DISPENSED, "ok", "return", 1.0,
                                dispensed_minor=10_000 if n % 5 else 0))
    atm.issue(2_501)
    atm.record(JournalEntry(2_501, "inquiry", 0, "4980********0001", Outcome.APPROVED, "ok", "return", 1.0))
    atm.issue(2_502)
    atm.record(JournalEntry(2_502, "deposit", 30_000, "4980********0001", Outcome.NO_ANSWER, "timeout", "return",
                            5_000.0))
    async with bank() as server:
        totals = await fleet.journal_upload("127.0.0.1", server.port)
    uploads = [body for path, body in server.requests if path == "/atm/v1/journal"]
    assert [len(body["entries"]) for body in uploads] == [1_000, 1_000, 501]
    assert all(body.keys() == {"atm_id", "entries"} and body["atm_id"] == "SIM000001" for body in uploads)
    entries_sent = [e for body in uploads for e in body["entries"]]
    assert collections.Counter((e["operation"], e["outcome"], e["amount_minor"]) for e in entries_sent) == {
        ("withdrawal", "dispensed", 10_000): 2_000, ("withdrawal", "not_dispensed", 10_000): 500,
        ("deposit", "no_answer", 30_000): 1}
    assert totals == {"uploads": 3, "entries": 2_501, "matched": 2_500, "corrected": 0, "not_applicable": 0,
                      "breaks": 1, "errors": 0}
    assert fleet.journal_no_next == 2_503


async def test_a_warm_up_is_load_like_the_rest_with_its_latencies_reported_apart() -> None:
    async with bank() as server:
        _, report = await run(config(seconds=0.2, warmup_s=0.2), server)
    assert report["transactions"] == {"scheduled": 8, "completed": 8, "abandoned": 0, "unfinished": 0}
    assert report["withdrawals"]["ack_codes"] == {"posted": 8}  # every transaction counts, warm-up or not
    assert report["latency_ms"]["withdrawal_end_to_end"]["count"] == 4  # the measured window's only
    assert report["latency_ms"]["withdrawal"]["count"] == 4
    assert report["warmup_latency_ms"]["withdrawal_end_to_end"]["count"] == 4
    assert report["warmup_s"] == 0.2
    with pytest.raises(ValueError, match="warmup_s"):
        config(warmup_s=-1)


async def test_a_fleet_runs_once_and_tells_where_the_next_run_continues() -> None:
    async with bank() as server:
        fleet, _ = await run(config(atms=1, seconds=0.1), server)
        with pytest.raises(RuntimeError, match="runs once"):
            await fleet.run("127.0.0.1", server.port)
        follow_up = Fleet(config(atms=1, seconds=0.1, journal_no_first=fleet.journal_no_next))
        await follow_up.run("127.0.0.1", server.port)
    numbers = [body["journal_no"] for path, body in server.requests if path == "/atm/v1/withdrawal"]
    assert numbers == [1, 2, 3, 4]


# -- the command -----------------------------------------------------------------------------------------

async def test_the_command_prints_one_report_and_reconciles(tmp_path: Any) -> None:
    cards = tmp_path / "cards.json"
    cards.write_bytes(orjson.dumps({"cards": [
        {"card_number": c.number, "pin": c.pin, "account_id": c.account_id, "branch_code": c.branch_code,
         "account_number": c.account_number, "card_loan": c.card_loan} for c in CARDS]}))
    async with bank() as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kanjo.sim", "atm", "--port", str(server.port), "--atms", "5", "--rate", "30",
            "--seconds", "0.5", "--cards", str(cards), "--seed", "3", "--upload-journal", "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    report = orjson.loads(out)  # one JSON object, nothing else on stdout
    assert report["transactions"]["completed"] == report["transactions"]["scheduled"] == 26  # 58 % withdrawals
    assert report["operations"]["by_operation"]["withdrawal"]["scheduled"] == 15
    assert report["system_errors"] == 0
    assert report["reconciliation"]["errors"] == 0 and report["reconciliation"]["entries"] > 0
    assert report["journal_no_next"] > 1
    assert len(report["per_atm"]["rows"]) == 5
    assert b"[sim]" in err
