"""`kanjo drill network-flap`: the link between the ATMs and kanjo drops and comes back again and again under load
(seed 001, 3/3: a flapping network card; 29 ATMs kept cards), then a last stretch of load on the restored link.

The link is a real TCP proxy (`kanjo.drills.proxy`): going down resets every connection, so requests and answers are
lost mid-flight. Once the flapping is over and every acknowledgement deadline has passed, every ATM uploads its
journal. Pass: the cash the journals say left (or entered) the machines is exactly what the ledger posted on the
ATMs' cash account — every dispensed withdrawal posted once, nothing posted for the others, no hold left open; zero
breaks and no in-doubt item left open; no card kept by a system error; after the flapping, load runs without a system
error within its latency objective and health is up; the books verify.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

from kanjo.accounting import ATM_CASH, gl_account_id
from kanjo.drills.fleet import Bank, FleetRuns, prepare_bank
from kanjo.drills.model import (
    AT_LEAST,
    AT_MOST,
    EQUALS,
    Criterion,
    NetworkFlapOptions,
    drill_report,
    flap_windows,
    verification_summary,
)
from kanjo.drills.proxy import LOOPBACK, FlappingLink, flap
from kanjo.drills.server import DrillError, Ops, Target, progress

SWEEP_SLACK_S = 2.0  # the channel sweeps overdue authorisations every second: one more, and a margin
PROBE_WITHDRAWAL_MINOR = 1_000


async def run_network_flap(options: NetworkFlapOptions, target: Target) -> dict[str, Any]:
    options.check()
    ops = Ops(target)
    bank = await prepare_bank(ops, options.fleet, drill_atms=1)
    ack_timeout_s = await measure_ack_timeout(ops, bank)
    cash_before = await atm_cash(ops)
    runs = FleetRuns(options.fleet, bank)
    link = FlappingLink(target.port, options.mode)
    await link.start()
    try:
        flapping, recovery, health, ended = await _load(options, runs, link, ops)
    finally:
        await link.close()
    lossy = "recovery" if recovery["system_errors_by_operation"] else "flapping"
    waited = await _wait_for_deadlines(options.wait_ack_deadline, ended[lossy] + ack_timeout_s + SWEEP_SLACK_S)
    in_doubt_before = await ops.in_doubt()
    reconciliation = await runs.upload(target)
    in_doubt_after = await ops.in_doubt()
    cash_after = await atm_cash(ops)
    verification = await ops.verify()
    measured = {"ack_timeout_s": ack_timeout_s, "journals_uploaded_after_ack_deadline": waited,
                "link": {"mode": options.mode, **link.counters.as_dict()}, "phases": [flapping, recovery],
                "journals": runs.cash(), "atm_cash_account": _delta(cash_before, cash_after),
                "in_doubt_before_reconciliation": in_doubt_before.get("summary"),
                "in_doubt_after_reconciliation": in_doubt_after.get("summary"),
                "reconciliation": reconciliation, "health_after": health,
                "verification": verification_summary(verification)}
    return drill_report("network-flap", options, judge(options, measured), measured)


async def _load(options: NetworkFlapOptions, runs: FleetRuns, link: FlappingLink,
                ops: Ops) -> tuple[dict[str, Any], dict[str, Any], str, dict[str, float]]:
    """The flapping stretch (the flapper beside the fleet), then the recovery stretch; health after it, and when
    each stretch ended (perf_counter s)."""
    windows = flap_windows(options.flap_s, options.period_s, options.down_s)
    progress(f"flapping: {len(windows)} × {options.down_s:g} s down ({options.mode}) every {options.period_s:g} s")
    flapper = asyncio.create_task(flap(link, windows, time.perf_counter()), name="drill-flapper")
    try:
        flapping = await runs.run("flapping", options.flap_s, LOOPBACK, link.port)
    finally:
        flapper.cancel()
        await asyncio.gather(flapper, return_exceptions=True)
    ended = {"flapping": time.perf_counter()}
    recovery = await runs.run("recovery", options.recovery_s, LOOPBACK, link.port)
    ended["recovery"] = time.perf_counter()
    health = str((await ops.health()).get("status"))
    return flapping, recovery, health, ended


async def _wait_for_deadlines(wait: bool, until: float) -> bool:
    """Sleep until `until` (perf_counter s): the last stretch that lost messages ended, plus the acknowledgement
    timeout and a sweep; unless told not to wait. Whether the journals go up after every deadline has passed."""
    if not wait:
        return time.perf_counter() >= until
    wait_s = until - time.perf_counter()
    if wait_s > 0:
        progress(f"waiting {wait_s:.1f} s for the last acknowledgement deadline to pass and be swept")
        await asyncio.sleep(wait_s)
    return True


async def measure_ack_timeout(ops: Ops, bank: Bank) -> int:
    """The server's acknowledgement timeout, as an ATM learns it: authorise ¥1,000 from the drill's own ATM, read
    `ack_deadline_at`, then acknowledge nothing dispensed (the hold is voided; no money moves)."""
    atm_id, card = bank.drill_atm_ids[0], bank.cards[0]
    asked_at = time.time()
    status, answer = await ops.call("POST", "/atm/v1/withdrawal", {
        "atm_id": atm_id, "journal_no": 1, "card": {"number": card.number, "pin": card.pin},
        "amount_minor": PROBE_WITHDRAWAL_MINOR})
    if status != 200 or not isinstance(answer, dict) or answer.get("result") != "approved":
        raise DrillError(f"the probe withdrawal was not approved: {status} {str(answer)[:300]}")
    deadline = dt.datetime.fromisoformat(str(answer["ack_deadline_at"])).timestamp()
    await ops.expect("POST", "/atm/v1/withdrawal/ack", {"atm_id": atm_id, "journal_no": 1, "dispensed_minor": 0})
    ack_timeout_s = round(deadline - asked_at)
    progress(f"the server voids an unacknowledged withdrawal after {ack_timeout_s} s")
    return ack_timeout_s


async def atm_cash(ops: Ops) -> dict[str, int]:
    """The ledger's account of the cash in ATMs: credited by withdrawals (pending while held), debited by deposits."""
    account = await ops.ledger_account(str(uuid.UUID(int=gl_account_id(ATM_CASH))))
    return {k: int(account.get(k, 0)) for k in ("debits_pending", "debits_posted", "credits_pending", "credits_posted")}


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in before}


def judge(options: NetworkFlapOptions, m: dict[str, Any]) -> list[Criterion]:
    flapping, recovery = m["phases"]
    journals, cash, link = m["journals"], m["atm_cash_account"], m["link"]
    in_doubt = m["in_doubt_after_reconciliation"] or {}
    reconciliation = m["reconciliation"]
    windows = flap_windows(options.flap_s, options.period_s, options.down_s)
    phases = (flapping, recovery)
    return [
        Criterion("link_flaps", link["flaps"], len(windows), EQUALS),
        Criterion("connections_reset_by_flaps", link["connections_reset"] + link["connections_blackholed"], 1,
                  AT_LEAST),
        Criterion("dispensed_posted_exactly_once_minor", cash["credits_posted"], journals["dispensed_minor"], EQUALS,
                  "yen", {"withdrawals_dispensed": journals["dispensed"]}),
        Criterion("deposited_credited_exactly_once_minor", cash["debits_posted"], journals["deposited_minor"], EQUALS,
                  "yen", {"deposits_taken_in": journals["deposited"]}),
        Criterion("holds_left_open_minor", cash["credits_pending"], 0, EQUALS, "yen"),
        Criterion("journal_breaks", reconciliation.get("breaks"), 0, EQUALS),
        Criterion("journal_upload_errors", reconciliation.get("errors"), 0, EQUALS),
        Criterion("in_doubt_open_after_reconciliation", in_doubt.get("open"), 0, EQUALS,
                  detail={"before_reconciliation": m["in_doubt_before_reconciliation"]}),
        Criterion("cards_retained_by_system_error",
                  sum(p["cards_retained_by_system_error"] + p["retain_asked_on_system_error"] for p in phases), 0,
                  EQUALS, detail={"retained_by_business_rule": sum(p["cards_retained"] for p in phases)}),
        Criterion("transactions_unfinished", sum(p["transactions"]["unfinished"] for p in phases), 0, EQUALS),
        Criterion("recovery_system_errors", sum(recovery["system_errors_by_operation"].values()), 0, EQUALS,
                  detail=recovery["system_errors_by_operation"]),
        Criterion("recovery_withdrawal_latency_ms_p99", recovery["latency_ms"]["withdrawal"]["p99"],
                  options.latency_ms_p99_max, AT_MOST, "ms"),
        Criterion("health_after_recovery", m["health_after"], "up", EQUALS),
        Criterion("books_verified", m["verification"].get("ok") is True, True, EQUALS),
    ]
