"""The ATM simulator's pure parts: the seeded plan (exact mix, schedule, journal numbers, who draws on a card loan),
the fault plan's draws and windows, the config's limits, the roster, cards, the journal's upload lines and the
report's percentiles. No I/O."""

from __future__ import annotations

import collections
import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from kanjo.kernel import LimitReached
from kanjo.sim import (
    DEFAULT_MIX,
    Card,
    FaultPlan,
    FleetConfig,
    JournalEntry,
    Operation,
    Outcome,
    atm_roster,
    card_from_dict,
    load_cards,
    parse_link_down,
    parse_mix,
    percentiles_ms,
    plan,
)
from kanjo.sim.main import build_parser, config_from_args

CARDS = tuple(Card(f"4980{i:012d}", f"{i % 10_000:04d}", f"acct-{i}", "001", f"{1000000 + i}", i % 10 == 0)
              for i in range(50))  # every tenth holder has a card loan


def config(**overrides: object) -> FleetConfig:
    return replace(FleetConfig(atms=100, withdrawals_per_s=58.0, seconds=10.0, cards=CARDS, seed=42), **overrides)


def test_the_plan_is_a_function_of_the_seed() -> None:
    assert list(plan(config())) == list(plan(config()))
    assert list(plan(config())) != list(plan(config(seed=43)))


def test_the_mix_is_exact_and_the_rate_is_of_withdrawals() -> None:
    cfg = config()
    planned = list(plan(cfg))
    assert cfg.operations_per_s == pytest.approx(100.0)
    assert len(planned) == cfg.transactions == 1_000
    counts = collections.Counter(p.operation for p in planned)
    assert counts == {Operation.WITHDRAWAL: 580, Operation.INQUIRY: 200, Operation.DEPOSIT: 150,
                      Operation.TRANSFER: 40, Operation.LOAN_DRAW: 20, Operation.TIME_DEPOSIT: 10}
    # evenly spread: every second has its 58 withdrawals
    per_second = collections.Counter(int(p.scheduled_s) for p in planned if p.operation is Operation.WITHDRAWAL)
    assert set(per_second.values()) == {58}


def test_the_schedule_is_fixed_intervals_from_the_start() -> None:
    planned = list(plan(config(seconds=1.0)))
    assert [p.seq for p in planned] == list(range(100))
    assert [p.scheduled_s for p in planned[:3]] == pytest.approx([0.0, 0.01, 0.02])


def test_journal_numbers_increase_per_atm_from_the_first_given() -> None:
    numbers: dict[int, list[int]] = collections.defaultdict(list)
    for p in plan(config(journal_no_first=500)):
        numbers[p.atm_index].append(p.journal_no)
    for seen in numbers.values():
        assert seen == list(range(500, 500 + len(seen)))


def test_amounts_are_notes_within_the_protocol_and_transfers_go_to_another_card() -> None:
    for p in plan(config(wrong_pin_share=0.3, dispense_failure_share=0.1)):
        if p.operation is Operation.INQUIRY:
            assert p.amount_minor == 0
        else:
            assert p.amount_minor > 0 and p.amount_minor % 1_000 == 0
        if p.operation is Operation.WITHDRAWAL:
            assert p.amount_minor <= 500_000
        if p.operation is Operation.TRANSFER:
            assert p.payee_index is not None and p.payee_index != p.card_index
        if p.operation is Operation.TIME_DEPOSIT:
            assert p.term_months in (1, 3, 6, 12)
    shares = [p.wrong_pin for p in plan(config())]
    assert not any(shares)  # the default share of wrong PINs is 0


def test_loan_draws_are_small_sums_from_cards_with_a_card_loan_only() -> None:
    assert dict(DEFAULT_MIX)[Operation.LOAN_DRAW] == 2.0  # a realistic day: a few in a hundred draw on a card loan
    draws = [p for p in plan(config(seconds=100.0)) if p.operation is Operation.LOAN_DRAW]
    assert len(draws) == 200
    assert {CARDS[p.card_index].card_loan for p in draws} == {True}
    assert len({p.card_index for p in draws}) == sum(card.card_loan for card in CARDS)  # all borrowers, not one
    assert {p.amount_minor for p in draws} == {10_000, 20_000, 30_000, 50_000}
    assert all(p.payee_index is None and p.term_months is None for p in draws)
    others = [p for p in plan(config(seconds=100.0)) if p.operation is not Operation.LOAN_DRAW]
    assert len({p.card_index for p in others}) == len(CARDS)  # everyone else uses every card


def test_loan_draws_need_a_card_with_a_card_loan() -> None:
    without = tuple(replace(card, card_loan=False) for card in CARDS)
    with pytest.raises(ValueError, match="loan draws need cards whose holder has a card loan"):
        config(cards=without)
    assert config(cards=without, mix=parse_mix("withdrawal=58,loan_draw=0")).weights == {Operation.WITHDRAWAL: 58.0}
    assert config(mix=parse_mix("withdrawal=1,loan_draw=1")).weights[Operation.LOAN_DRAW] == 1.0


def test_the_journal_states_a_loan_draws_cash_as_a_withdrawals() -> None:
    def line(operation: str, outcome: Outcome, dispensed_minor: int = 0) -> JournalEntry:
        return JournalEntry(1, operation, 30_000, "4980********0001", outcome, "ok", "return", 1.0, dispensed_minor)

    assert line("loan_draw", Outcome.DISPENSED, 30_000).upload_outcome() == "dispensed"
    assert line("loan_draw", Outcome.NOT_DISPENSED).upload_outcome() == "not_dispensed"
    assert line("loan_draw", Outcome.NO_ANSWER).upload_outcome() == "no_answer"
    assert line("loan_draw", Outcome.DISPENSED, 20_000).upload_amount_minor() == 20_000  # what came out
    assert line("inquiry", Outcome.APPROVED).upload_outcome() is None


def test_the_fault_plan_draws_the_same_faults_from_the_same_seed() -> None:
    faults = FaultPlan(drop_request_share=0.3, lose_answer_share=0.2, delay_ms=50, delay_share=0.5)
    first = [faults.draw(random.Random(9)) for _ in range(3)]
    assert first == [faults.draw(random.Random(9)) for _ in range(3)]
    rng = random.Random(1)
    draws = [faults.draw(rng) for _ in range(10_000)]
    assert 0.27 < sum(d.drop_request for d in draws) / len(draws) < 0.33
    assert 0.17 < sum(d.lose_answer for d in draws) / len(draws) < 0.23
    assert {d.delay_s for d in draws} == {0.0, 0.05}
    assert FaultPlan().quiet and not faults.quiet


def test_link_down_windows_are_half_open_seconds_from_the_start() -> None:
    faults = FaultPlan(link_down_s=parse_link_down("10-15, 30-32.5"))
    assert faults.link_down_s == ((10.0, 15.0), (30.0, 32.5))
    assert [faults.link_down_at(t) for t in (9.99, 10.0, 14.99, 15.0, 31.0, 32.5)] == [
        False, True, True, False, True, False]
    with pytest.raises(ValueError, match="window"):
        FaultPlan(link_down_s=((5.0, 5.0),))
    with pytest.raises(ValueError, match="START-END"):
        parse_link_down("10")
    with pytest.raises(LimitReached, match="sim_link_down_windows_max"):
        FaultPlan(link_down_s=tuple((float(i), i + 0.5) for i in range(101)))
    with pytest.raises(ValueError, match="share"):
        FaultPlan(drop_request_share=1.5)


def test_the_config_refuses_what_cannot_run() -> None:
    with pytest.raises(ValueError, match="withdrawals have a positive weight"):
        config(mix=parse_mix("inquiry=1"))
    with pytest.raises(ValueError, match="transfers need cards"):
        config(cards=(Card("4980000000000001", "1234", "a"),))
    with pytest.raises(LimitReached, match="sim_atms_max"):
        config(atms=100_001)
    with pytest.raises(LimitReached, match="sim_transactions_per_run_max"):
        config(withdrawals_per_s=10_000.0, seconds=3_600.0)
    with pytest.raises(ValueError, match="journal numbers"):
        config(journal_no_first=99_999_500)
    with pytest.raises(ValueError, match="connections"):
        config(connections=257)
    with pytest.raises(ValueError, match="retries"):
        config(retries_max=11)
    with pytest.raises(ValueError, match="unknown operation"):
        parse_mix("withdrawl=1")
    assert config(mix=parse_mix("withdrawal=1,transfer=0"), cards=(Card("4980000000000001", "1234", "a"),))


def test_the_roster_is_fixed_by_the_count_and_ids_fit_the_protocol() -> None:
    roster = atm_roster(1_000)
    assert roster == atm_roster(1_000) and roster[:2] == [("SIM000001", "own"), ("SIM000002", "own")]
    kinds = collections.Counter(kind for _, kind in roster)
    assert kinds == {"own": 700, "other_bank": 100, "convenience": 200}
    assert all(len(atm_id) <= 12 and atm_id.isalnum() and atm_id.isupper() for atm_id, _ in atm_roster(100_000))
    with pytest.raises(ValueError):
        atm_roster(1, prefix="bad-")


def test_cards_come_from_the_seeding_answer_or_a_plain_list(tmp_path: Path) -> None:
    raw = [{"card_number": "4980000000000001", "pin": "0042", "account_id": "x", "branch_code": "001",
            "account_number": "1234567"}]
    (tmp_path / "answer.json").write_text(json.dumps({"cards": raw}))
    (tmp_path / "list.json").write_text(json.dumps(raw))
    assert load_cards(tmp_path / "answer.json") == load_cards(tmp_path / "list.json") == (card_from_dict(raw[0]),)
    card = card_from_dict(raw[0])
    assert card.masked == "4980********0001" and card.wrong_pin == "0043" and card.payable and not card.card_loan
    assert card_from_dict({**raw[0], "card_loan": True}).card_loan
    with pytest.raises(ValueError, match="16-digit"):
        card_from_dict({"card_number": "123", "pin": "0042", "account_id": "x"})
    with pytest.raises(ValueError, match="card_loan is true or false"):
        card_from_dict({**raw[0], "card_loan": "yes"})


def test_the_command_line_builds_the_same_config(tmp_path: Path) -> None:
    (tmp_path / "cards.json").write_text(json.dumps([
        {"card_number": f"4980{i:012d}", "pin": "1234", "account_id": str(i), "branch_code": "001",
         "account_number": f"{1000000 + i}"} for i in range(3)]))
    args = build_parser().parse_args([
        "atm", "--port", "1", "--atms", "10", "--rate", "5", "--seconds", "2", "--cards", str(tmp_path / "cards.json"),
        "--seed", "9", "--json", "--link-down", "1-2", "--lose-answer-share", "0.1", "--mix", "withdrawal=3,inquiry=1",
    ])
    cfg = config_from_args(args)
    assert (cfg.atms, cfg.withdrawals_per_s, cfg.seconds, cfg.seed, len(cfg.cards)) == (10, 5.0, 2.0, 9, 3)
    assert cfg.faults == FaultPlan(lose_answer_share=0.1, link_down_s=((1.0, 2.0),))
    assert cfg.weights == {Operation.WITHDRAWAL: 3.0, Operation.INQUIRY: 1.0}
    assert cfg.request_timeout_ms == 5_000 and cfg.retries_max == 2


def test_percentiles_are_nearest_rank_in_ms() -> None:
    assert percentiles_ms([]) == {"p50": None, "p99": None, "max": None, "count": 0}
    samples = list(range(1_000, 101_000, 1_000))  # 1 ms … 100 ms
    assert percentiles_ms(samples) == {"p50": 50.0, "p99": 99.0, "max": 100.0, "count": 100}
