"""`kanjo bench atm`'s pure pieces: its argument checks, the mix it asks for, and the line it makes of a simulator
report (what counts as a system error when a product is down on purpose, and when the scenario passes)."""

from __future__ import annotations

import collections
from typing import Any

import pytest

from kanjo.bench.atm import _check_arguments, _mix_for, scenario_result
from kanjo.sim import DEFAULT_MIX, Card, Fleet, FleetConfig, parse_mix
from kanjo.sim.report import build_report

CARDS = tuple(Card(f"4980{i:012d}", "1234", f"acct-{i}", "001", f"{1000000 + i}", i == 0) for i in range(4))


def simulator_report(*, e2e_ms: list[float], time_deposit_unavailable: int = 0,
                     withdrawal_errors: int = 0) -> dict[str, Any]:
    """A report as the simulator makes it, from a tally filled by hand."""
    fleet = Fleet(FleetConfig(atms=3, withdrawals_per_s=6.0, seconds=1.0, cards=CARDS))
    tally = fleet.tally
    tally.scheduled.update({"withdrawal": len(e2e_ms) + withdrawal_errors, "time_deposit": time_deposit_unavailable})
    tally.results["withdrawal"]["approved/ok"] = len(e2e_ms)
    tally.withdrawal_end_to_end_us.extend(round(ms * 1000) for ms in e2e_ms)
    for ms in e2e_ms:
        tally.latency("withdrawal", ms / 2000)
    tally.withdrawals.ack_codes["posted"] = len(e2e_ms)
    if withdrawal_errors:
        tally.results["withdrawal"]["no_answer/timeout"] = withdrawal_errors
        tally.system_errors["withdrawal"]["timeout"] = withdrawal_errors
    if time_deposit_unavailable:
        tally.results["time_deposit"]["unavailable/unavailable"] = time_deposit_unavailable
        tally.system_errors["time_deposit"]["status_503"] = time_deposit_unavailable
    report = build_report(fleet.config, tally, fleet.atms, elapsed_s=1.0, faults={}, unfinished=0)
    report["reconciliation"] = {"uploads": 3, "entries": 6, "matched": 6, "corrected": 0, "not_applicable": 0,
                                "breaks": 0, "errors": 0}
    report["journal_no_next"] = 7
    return report


def test_a_fast_error_free_run_passes_and_reports_the_contract() -> None:
    result = scenario_result("atm", simulator_report(e2e_ms=[5.0] * 99 + [40.0]), verified=True)
    assert next(iter(result)) == "scenario"
    assert (result["latency_ms_p50"], result["latency_ms_p99"], result["latency_ms_max"]) == (5.0, 5.0, 40.0)
    assert result["latency_ms_by_message"]["withdrawal"] == {"p50": 2.5, "p99": 2.5, "max": 20.0, "count": 100}
    assert result["withdrawals_per_s_offered"] == 6.0 and result["withdrawals_per_s_achieved"] == 100.0
    assert result["system_errors"] == 0 and result["cards_retained_by_system_error"] == 0
    assert result["withdrawal_ack_codes"] == {"posted": 100} and result["loan_draw_ack_codes"] == {}
    assert result["passed"] is True and result["verified"] is True
    assert "unavailable_while_down" not in result


@pytest.mark.parametrize(("report", "verified"), [
    (simulator_report(e2e_ms=[5.0] * 98 + [60.0, 60.0]), True),  # p99 over 50 ms
    (simulator_report(e2e_ms=[5.0] * 100, withdrawal_errors=1), True),  # one system error
    (simulator_report(e2e_ms=[5.0] * 100), False),  # the books did not verify
    (simulator_report(e2e_ms=[]), True),  # nothing measured
])
def test_the_scenario_fails_on_latency_errors_books_or_no_measurement(report: dict[str, Any], verified: bool) -> None:
    assert scenario_result("atm", report, verified=verified)["passed"] is False


def test_a_product_down_on_purpose_is_left_out_of_system_errors_but_must_have_been_down() -> None:
    report = simulator_report(e2e_ms=[5.0] * 100, time_deposit_unavailable=3)
    down = scenario_result("atm-time-deposit-down", report, verified=True, down_operations=("time_deposit",))
    assert down["system_errors"] == 0 and down["system_errors_by_operation"] == {"time_deposit": 3}
    assert down["unavailable_while_down"] == 3 and down["passed"] is True
    normal = scenario_result("atm", report, verified=True)
    assert normal["system_errors"] == 3 and normal["passed"] is False  # the same errors count when nothing is down
    never_down = scenario_result("atm-time-deposit-down", simulator_report(e2e_ms=[5.0] * 100), verified=True,
                                 down_operations=("time_deposit",))
    assert never_down["unavailable_while_down"] == 0 and never_down["passed"] is False  # the fault did not bite


def test_a_retained_card_on_a_system_error_fails_the_scenario() -> None:
    report = simulator_report(e2e_ms=[5.0] * 100)
    report["cards_retained_by_system_error"] = 1
    assert scenario_result("atm", report, verified=True)["passed"] is False
    report = simulator_report(e2e_ms=[5.0] * 100)
    report["retain_asked_on_system_error"] = 1
    assert scenario_result("atm", report, verified=True)["passed"] is False


def test_arguments_are_checked_before_anything_starts() -> None:
    _check_arguments(1_000, 500.0, 30.0, 10_000, ["atm", "atm-time-deposit-down"], "kanjo_bench_atm")
    for bad, match in [((0, 500.0, 30.0, 10_000, ["atm"], "kanjo_bench_atm"), "atms"),
                       ((1_000, 0.0, 30.0, 10_000, ["atm"], "kanjo_bench_atm"), "rate"),
                       ((1_000, 500.0, 0.0, 10_000, ["atm"], "kanjo_bench_atm"), "seconds"),
                       ((1_000, 500.0, 30.0, 1, ["atm"], "kanjo_bench_atm"), "cards"),
                       ((1_000, 500.0, 30.0, 10_000, ["atm", "nope"], "kanjo_bench_atm"), "unknown scenarios"),
                       ((1_000, 500.0, 30.0, 10_000, ["atm"], "Robert'); DROP"), "database")]:
        with pytest.raises(ValueError, match=match):
            _check_arguments(*bad)


def test_operations_leave_the_mix_only_when_the_cards_cannot_do_them() -> None:
    payable = {"card_number": "4980000000000001", "pin": "1234", "account_id": "a", "branch_code": "001",
               "account_number": "1000001"}
    assert _mix_for([payable, {**payable, "card_loan": True}]) is None  # the simulator's default, realistic mix
    for cards, left_out in (([{"card_number": "4980000000000001", "pin": "1234", "account_id": "a",
                               "card_loan": True}], "transfer"),
                            ([payable, {**payable, "card_loan": False}], "loan_draw")):
        mix = _mix_for(cards)
        assert mix is not None and left_out not in mix and "withdrawal=58" in mix, mix
        assert {"transfer", "loan_draw"} - {left_out} <= {part.split("=")[0] for part in mix.split(",")}, mix
        assert collections.Counter(part.split("=")[0] for part in mix.split(",")).most_common(1)[0][1] == 1
    assert parse_mix(_mix_for([{**payable, "branch_code": None}]) or "") == tuple(
        (op, weight) for op, weight in DEFAULT_MIX if op not in ("transfer", "loan_draw"))
