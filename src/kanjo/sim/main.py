"""`python -m kanjo.sim atm …` (also `kanjo sim atm …`): run an ATM fleet against a kanjo on a port and print
its report as one JSON object on stdout; progress goes to stderr."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from kanjo.kernel import LimitReached
from kanjo.sim.fleet import Fleet
from kanjo.sim.limits import CARDS_MAX
from kanjo.sim.model import Card, FaultPlan, FleetConfig, card_from_dict, parse_link_down, parse_mix

CARDS_FILE_BYTES_MAX = 256 * 1024 * 1024  # ~1M cards of ~150 bytes, with room


def load_cards(path: Path) -> tuple[Card, ...]:
    """Cards from a JSON file: a list of card objects, or the seeding endpoint's {"cards": [...]}."""
    if path.stat().st_size > CARDS_FILE_BYTES_MAX:
        raise ValueError(f"{path} is larger than {CARDS_FILE_BYTES_MAX:,} bytes")
    raw = json.loads(path.read_text(encoding="utf-8"))
    items = raw.get("cards") if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError(f"{path}: expected a list of cards or {{\"cards\": [...]}}")
    if len(items) > CARDS_MAX:
        raise ValueError(f"{path}: {len(items):,} cards; at most {CARDS_MAX:,}")
    return tuple(card_from_dict(item) for item in items)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kanjo.sim", description="Device simulators for kanjo.")
    commands = parser.add_subparsers(dest="command", required=True)
    atm = commands.add_parser("atm", help="an ATM fleet: load generator and device side of drills")
    atm.add_argument("--host", default="127.0.0.1")
    atm.add_argument("--port", type=int, required=True)
    atm.add_argument("--atms", type=int, default=1000)
    atm.add_argument("--rate", type=float, default=500.0, help="offered withdrawals per second (the fleet's total)")
    atm.add_argument("--seconds", type=float, default=30.0)
    atm.add_argument("--warmup-seconds", type=float, default=0.0,
                     help="load at the same rate before the measured seconds; its latencies are reported apart")
    atm.add_argument("--cards", type=Path, required=True, help="JSON file of cards (card_number, pin, account_id, …)")
    atm.add_argument("--seed", type=int, default=1)
    atm.add_argument("--json", action="store_true", help="the report as one JSON object (the only format)")
    atm.add_argument("--mix", default=None,
                     help="e.g. withdrawal=58,inquiry=20,deposit=15,transfer=4,loan_draw=2,time_deposit=1")
    atm.add_argument("--connections", type=int, default=64)
    atm.add_argument("--timeout-ms", type=int, default=5_000, help="the device's wait for one answer")
    atm.add_argument("--retries", type=int, default=2, help="resends of a message (same journal number)")
    atm.add_argument("--ack-retries", type=int, default=5)
    atm.add_argument("--wrong-pin-share", type=float, default=0.0)
    atm.add_argument("--dispense-failure-share", type=float, default=0.0)
    atm.add_argument("--dispense-delay-ms", type=int, default=0)
    atm.add_argument("--drop-request-share", type=float, default=0.0)
    atm.add_argument("--lose-answer-share", type=float, default=0.0)
    atm.add_argument("--delay-ms", type=int, default=0)
    atm.add_argument("--delay-share", type=float, default=1.0)
    atm.add_argument("--link-down", default="", help="seconds from the start, e.g. 10-15,30-32")
    atm.add_argument("--journal-from", type=int, default=1, help="first journal number (continue earlier runs)")
    atm.add_argument("--atm-prefix", default="SIM")
    atm.add_argument("--upload-journal", action="store_true", help="after the run, reconcile the journals")
    return parser


def config_from_args(args: argparse.Namespace) -> FleetConfig:
    faults = FaultPlan(drop_request_share=args.drop_request_share, lose_answer_share=args.lose_answer_share,
                       delay_ms=args.delay_ms, delay_share=args.delay_share,
                       link_down_s=parse_link_down(args.link_down))
    extra: dict[str, Any] = {"mix": parse_mix(args.mix)} if args.mix else {}
    return FleetConfig(
        atms=args.atms, withdrawals_per_s=args.rate, seconds=args.seconds, cards=load_cards(args.cards),
        seed=args.seed, wrong_pin_share=args.wrong_pin_share, request_timeout_ms=args.timeout_ms,
        retries_max=args.retries, ack_retries_max=args.ack_retries, dispense_delay_ms=args.dispense_delay_ms,
        dispense_failure_share=args.dispense_failure_share, connections=args.connections, faults=faults,
        journal_no_first=args.journal_from, atm_id_prefix=args.atm_prefix, warmup_s=args.warmup_seconds, **extra,
    )


async def simulate_atms(config: FleetConfig, *, host: str, port: int, upload_journal: bool) -> dict[str, Any]:
    """One run of the fleet (and its journal upload); the report, with where the next run's journal numbers start."""
    fleet = Fleet(config)
    _progress(f"{config.atms:,} ATMs offering {config.withdrawals_per_s:,} withdrawals/s"
              f" ({config.operations_per_s:,.1f} transactions/s) for {config.seconds} s"
              f"{f' after a warm-up of {config.warmup_s:g} s' if config.warmup_s else ''} to {host}:{port}")
    report = await fleet.run(host, port)
    _progress(f"run: {report['transactions']['completed']:,} transactions, {report['system_errors']:,} system errors,"
              f" withdrawal p99 {report['latency_ms']['withdrawal_end_to_end']['p99']} ms end to end")
    if upload_journal:
        report["reconciliation"] = await fleet.journal_upload(host, port)
        _progress(f"journals: {report['reconciliation']}")
    report["journal_no_next"] = fleet.journal_no_next
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except (ValueError, LimitReached, OSError) as exc:
        parser.error(str(exc))  # exits 2
    report = _run(simulate_atms(config, host=args.host, port=args.port, upload_journal=args.upload_journal))
    print(json.dumps(report, ensure_ascii=False), flush=True)
    return 0


def _run(coro: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """On uvloop when installed: the simulator shares the cores with the bank it drives."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _progress(message: str) -> None:
    print(f"[sim] {message}", file=sys.stderr, flush=True)
