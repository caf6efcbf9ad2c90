"""The `kanjo` command line (Typer): thin wiring of settings, database, ledger and HTTP server."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from kanjo.platform.settings import Settings, load_settings

app = typer.Typer(help="kanjo (勘定): an open-source core banking system.", no_args_is_help=True,
                  add_completion=False)
bench_app = typer.Typer(help="Benchmarks: one JSON object per scenario.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
sim_app = typer.Typer(help="Device simulators: load generators and the device side of drills.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")
drill_app = typer.Typer(help="Drills (RESILIENCE.md): a failure under load, judged; one JSON object, exit 1 when a"
                        " criterion fails.", no_args_is_help=True)
app.add_typer(drill_app, name="drill")
err = Console(stderr=True)


@contextmanager
def database(settings: Settings, *, database: str | None = None) -> Iterator[str]:
    """The configured PostgreSQL, or the embedded one under var/ (started here, stopped on exit if so)."""
    if settings.database_url:
        yield settings.database_url
        return
    from kanjo.platform.embedded_pg import EmbeddedPostgres

    server = EmbeddedPostgres(settings.var_dir / "pg", port=settings.embedded_pg_port)
    was_running = server.is_running()
    if not was_running:
        err.print(f"[dim]starting the embedded PostgreSQL under {server.data_dir}…[/dim]")
    server.start()
    try:
        yield server.dsn_for(database or "postgres")
    finally:
        if not was_running:
            server.stop()
            err.print("[dim]embedded PostgreSQL stopped[/dim]")


def _run(coro) -> object:  # type: ignore[no-untyped-def]
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    except ImportError:
        return asyncio.run(coro)


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="load the demo bank (idempotent)")] = True,
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
) -> None:
    """Start kanjo: database (embedded unless KANJO_DATABASE_URL), migrations, demo data, HTTP API."""
    settings = load_settings()
    from kanjo.platform.logging import configure_logging

    configure_logging(settings.log_level, json_lines=settings.environment != "development")
    host = host or settings.http_host
    port = port or settings.http_port
    with database(settings) as dsn:
        _run(_serve(settings, dsn, host, port, demo))


async def _serve(settings: Settings, dsn: str, host: str, port: int, demo: bool) -> None:
    from kanjo.accounting import ensure_chart
    from kanjo.app import create_app, start_background, stop_background
    from kanjo.batch import BusinessDay
    from kanjo.business_calendar import BankCalendar, business_date_of
    from kanjo.kernel import SystemClock
    from kanjo.ledger import Ledger
    from kanjo.platform import db
    from kanjo.platform.migrations import migrate

    await db.wait_for_database(dsn)
    conn = await db.connect(dsn)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    calendar = BankCalendar()
    clock = SystemClock()
    day = BusinessDay(settings.batch_first_business_date or business_date_of(clock, calendar))  # until the batch's
    # open date is read, just below (a new database opens on this one)
    ledger = await Ledger.start(dsn, clock=clock, business_date=day,
                                pool_size_max=settings.db_pool_size_max,
                                sweep_interval_s=settings.expiry_sweep_interval_ms / 1000,
                                linger_s=settings.batch_linger_us / 1_000_000)
    try:
        assert ledger.pool is not None
        day.moved_to((await BusinessDay.load(ledger.pool, day()))())
        await ensure_chart(ledger)
        app = create_app(ledger, business_day=day)
        await start_background(app)
        try:
            await _load_and_serve(app, settings, dsn, applied, host, port, demo)
        finally:
            await stop_background(app)
    finally:
        await ledger.stop()


async def _load_and_serve(app: Any, settings: Settings, dsn: str, applied: list[str], host: str, port: int,
                          demo: bool) -> None:
    import uvicorn

    from kanjo.app import served
    from kanjo.demo import load_demo, load_demo_atms, load_demo_operators

    loaded = await load_demo(app.state.bank) if demo else None
    operators: list[dict[str, str]] = []
    if demo:
        await load_demo_atms(app.state.atm)
        operators = await load_demo_operators(app.state.teller, settings.environment)
    server = uvicorn.Server(uvicorn.Config(served(app), host=host, port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    base = f"http://{host}:{port}"
    err.print(f"[bold green]kanjo is running[/bold green] — database {_redact(dsn)}"
              + (f", migrations applied: {len(applied)}" if applied else ""))
    if loaded:
        err.print(f"  demo bank: {loaded} (ATMs A0001, A0002, B0001, C0001)")
    if operators:
        err.print("  teller     /teller/v1 (branch 001; passwords for this run): " + ", ".join(
            f"{o['operator_id']} {o['role']} {o['password']}" for o in operators))
    err.print(f"  API docs   {base}/docs\n  metrics    {base}/metrics\n  limits     {base}/v1/limits\n"
              f"  health     {base}/health (partitions and products)\n  check the books: .venv/bin/kanjo verify\n"
              f"  Ctrl-C stops kanjo" + ("" if settings.database_url else " and its embedded PostgreSQL"))
    _settle_heap()
    await server.serve()


def _settle_heap() -> None:
    """Start-up objects (modules, app, demo) are permanent: move them out of the collector's sight,
    and collect young objects less often, so request latency does not pay for rescanning them."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)


def _redact(dsn: str) -> str:
    if "@" in dsn and ":" in dsn.split("@", 1)[0].split("//", 1)[-1]:
        scheme, rest = dsn.split("//", 1)
        user = rest.split(":", 1)[0]
        return f"{scheme}//{user}:***@{rest.split('@', 1)[1]}"
    return dsn


@app.command()
def verify() -> None:
    """Check every invariant of the books; prints one JSON object, exits 0 only when all hold."""
    settings = load_settings()
    with database(settings) as dsn:
        report = _run(_verify(dsn))
    print(json.dumps(report, ensure_ascii=False))
    raise typer.Exit(0 if report["ok"] else 1)  # type: ignore[index]


async def _verify(dsn: str) -> dict[str, object]:
    """The ledger's invariants, then each product's agreement with the ledger, as of today's business date."""
    from kanjo.books import verify_books
    from kanjo.business_calendar import BankCalendar, business_date_of
    from kanjo.kernel import SystemClock
    from kanjo.platform import db

    conn = await db.connect(dsn)
    try:
        return await verify_books(conn, business_date_of(SystemClock(), BankCalendar()))
    finally:
        await conn.close()


@bench_app.command("ledger")
def bench_ledger(
    json_output: Annotated[bool, typer.Option("--json", help="JSON lines on stdout (the only format)")] = True,
    seconds: Annotated[float, typer.Option(min=0.5, max=3600, help="duration of each scenario")] = 10.0,
    accounts: Annotated[int, typer.Option(min=2, max=10_000_000)] = 100_000,
    clients: Annotated[int, typer.Option(min=1, max=64, help="concurrent submitting clients")] = 4,
    batch_size: Annotated[int, typer.Option(min=1, max=8190, help="transfers per request")] = 8190,
    http_rate: Annotated[int, typer.Option(min=1, max=20_000, help="offered single transfers per second")] = 1000,
    http_seconds: Annotated[float | None, typer.Option(help="duration of the HTTP scenario")] = None,
    scenarios: Annotated[str, typer.Option(help="comma-separated: uniform,zipf,hot,http")] = "uniform,zipf,hot,http",
) -> None:
    """Ledger throughput and latency (durability on): uniform, Zipf, hot account, HTTP at a fixed rate."""
    from kanjo.bench import run_ledger_bench

    _bench(lambda server_dsn: run_ledger_bench(
        dsn=server_dsn, seconds=seconds, accounts=accounts, clients=clients, batch_size=batch_size,
        http_rate=http_rate, http_seconds=http_seconds or seconds, scenarios=_names(scenarios), emit=_emit_line))



@bench_app.command("products")
def bench_products(
    json_output: Annotated[bool, typer.Option("--json", help="JSON lines on stdout (the only format)")] = True,
    accounts: Annotated[int, typer.Option(min=1, max=79_999_992, help="ordinary deposit accounts")] = 1_000_000,
    time_deposits: Annotated[int, typer.Option(min=0, help="time deposits falling due on one day")] = 250_000,
) -> None:
    """Day-end jobs at scale: ordinary-deposit interest accrual and payout, time-deposit maturity (verified)."""
    from kanjo.bench import products as products_bench

    _bench(lambda server_dsn: products_bench.run_products_bench(
        dsn=server_dsn, accounts=accounts, time_deposits=time_deposits, emit=_emit_line))


@bench_app.command("atm")
def bench_atm(
    json_output: Annotated[bool, typer.Option("--json", help="JSON lines on stdout (the only format)")] = True,
    atms: Annotated[int, typer.Option(min=1, max=100_000, help="simulated ATMs")] = 1000,
    rate: Annotated[float, typer.Option(min=0.1, max=5000, help="offered withdrawals per second, whole fleet")] = 500.0,
    seconds: Annotated[float, typer.Option(min=0.5, max=3600, help="duration of each scenario")] = 30.0,
    cards: Annotated[int, typer.Option(min=2, max=1_000_000, help="customers with a cash card")] = 10_000,
    scenarios: Annotated[str, typer.Option(help="comma-separated: atm,atm-withdrawals,atm-time-deposit-down")] = (
        "atm,atm-withdrawals,atm-time-deposit-down"),
    warmup_seconds: Annotated[float, typer.Option(
        min=0, max=3600, help="load at the same rate before each scenario's seconds; its latencies reported apart",
    )] = 5.0,
) -> None:
    """ATM fleet against kanjo (simulator in its own process): p99 end to end, system errors, cards retained."""
    from kanjo.bench import run_atm_bench

    _bench(lambda server_dsn: run_atm_bench(
        dsn=server_dsn, atms=atms, rate=rate, seconds=seconds, cards=cards, scenarios=_names(scenarios),
        emit=_emit_line, warmup_seconds=warmup_seconds))


@bench_app.command("month-end")
def bench_month_end(
    json_output: Annotated[bool, typer.Option("--json", help="JSON lines on stdout (the only format)")] = True,
    items: Annotated[int, typer.Option(min=2, max=2_000_000, help="items of the concentrated posting")] = 700_000,
    atms: Annotated[int, typer.Option(min=1, max=100_000, help="simulated ATMs")] = 1000,
    rate: Annotated[float, typer.Option(min=0.1, max=5000, help="offered withdrawals per second, whole fleet")] = 500.0,
    cards: Annotated[int, typer.Option(min=2, max=1_000_000, help="customers with a cash card")] = 10_000,
    accounts: Annotated[int, typer.Option(min=1, max=1_000_000, help="accounts the posting credits")] = 10_000,
    day_change_accounts: Annotated[int, typer.Option(min=1, max=10_000_000, help="accounts of the day change")] = (
        1_000_000),
    scenarios: Annotated[str, typer.Option(help="comma-separated: month-end-posting,day-change")] = (
        "month-end-posting,day-change"),
) -> None:
    """The 2/28 month end: 700,000 items posted while the ATM fleet runs; the day change of 1,000,000 accounts."""
    from kanjo.bench import run_month_end_bench

    _bench(lambda server_dsn: run_month_end_bench(
        server_dsn=server_dsn, items=items, atms=atms, rate=rate, cards=cards, accounts=accounts,
        day_change_accounts=day_change_accounts, scenarios=_names(scenarios), emit=_emit_line))


def _names(comma_separated: str) -> list[str]:
    return [s.strip() for s in comma_separated.split(",") if s.strip()]


def _emit_line(obj: dict) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def _bench(make: Callable[[str], Coroutine[Any, Any, Any]]) -> None:
    """Run a bench against the configured PostgreSQL server (the embedded one unless KANJO_DATABASE_URL): `make`
    gets the server's maintenance DSN, where the bench creates its own fresh database."""
    with database(load_settings()) as dsn:
        _run(make(dsn.rpartition("/")[0] + "/postgres"))


@sim_app.command("atm", add_help_option=False,
                 context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sim_atm(ctx: typer.Context) -> None:
    """An ATM fleet against a running kanjo; one JSON report on stdout (`kanjo sim atm --help` for the options)."""
    from kanjo.sim import main as sim_main

    raise typer.Exit(sim_main(["atm", *ctx.args]))


# The drills' options; their defaults are those of kanjo.drills' option types (a test keeps them equal).
UrlOption = Annotated[str | None, typer.Option(help="a running kanjo with faults enabled, http://127.0.0.1:PORT;"
                                                    " default: start one on a fresh database")]
AtmsOption = Annotated[int, typer.Option(min=1, max=100_000, help="simulated ATMs")]
CardsOption = Annotated[int, typer.Option(min=2, max=1_000_000, help="card holders seeded")]
RateOption = Annotated[float, typer.Option(min=0.1, max=5000, help="offered withdrawals per second, whole fleet")]
MixOption = Annotated[str, typer.Option(help="the fleet's mix, e.g. withdrawal=60,inquiry=20,deposit=15")]
SeedOption = Annotated[int, typer.Option(help="the fleet's plan (same seed, same transactions)")]
TimeoutOption = Annotated[int, typer.Option(min=1, max=120_000, help="an ATM's wait for one answer (ms)")]
RetriesOption = Annotated[int, typer.Option(min=0, max=10, help="an ATM's resends of a message, same journal no.")]
SecondsOption = Annotated[float, typer.Option(min=0.5, max=3600)]


@drill_app.command("product-down")
def drill_product_down(
    json_output: Annotated[bool, typer.Option("--json", help="one JSON object on stdout (the only format)")] = True,
    url: UrlOption = None, atms: AtmsOption = 200, cards: CardsOption = 2_000, rate: RateOption = 30.0,
    mix: MixOption = "withdrawal=60,inquiry=20,deposit=15,time_deposit=5", seed: SeedOption = 20_260_303,
    device_timeout_ms: TimeoutOption = 5_000, retries: RetriesOption = 2,
    baseline_s: SecondsOption = 10.0, error_s: SecondsOption = 20.0, hang_s: SecondsOption = 20.0,
    restored_s: SecondsOption = 20.0,
    probe_rate: Annotated[float, typer.Option(min=0.5, max=200, help="the drill's own time deposits per second")] = 5.0,
    latency_ms_p99_max: Annotated[float, typer.Option(help="withdrawals, inquiries, deposits: p99 objective")] = 500.0,
    refusal_latency_ms_p99_max: Annotated[float, typer.Option(help="time deposits refused, breaker open")] = 100.0,
    recovery_s_max: Annotated[float, typer.Option(help="restore → breaker closed by itself")] = 15.0,
) -> None:
    """The time-deposit product fails (errors, then hangs) under ATM load, then is restored."""
    from kanjo.drills import FleetOptions, ProductDownOptions

    fleet = FleetOptions(atms=atms, cards=cards, withdrawals_per_s=rate, mix=mix, seed=seed,
                         device_timeout_ms=device_timeout_ms, retries=retries)
    _drill("product-down", url, lambda: ProductDownOptions(
        fleet, baseline_s, error_s, hang_s, restored_s, probe_rate, latency_ms_p99_max, refusal_latency_ms_p99_max,
        recovery_s_max))


@drill_app.command("network-flap")
def drill_network_flap(
    json_output: Annotated[bool, typer.Option("--json", help="one JSON object on stdout (the only format)")] = True,
    url: UrlOption = None, atms: AtmsOption = 200, cards: CardsOption = 2_000, rate: RateOption = 30.0,
    mix: MixOption = "withdrawal=58,inquiry=20,deposit=15,transfer=4,loan_draw=2,time_deposit=1",
    seed: SeedOption = 20_260_303, device_timeout_ms: TimeoutOption = 5_000, retries: RetriesOption = 2,
    flap_s: Annotated[float, typer.Option(min=0.5, max=3600, help="how long the link flaps")] = 60.0,
    period_s: Annotated[float, typer.Option(help="one flap per period: up, then down")] = 4.0,
    down_s: Annotated[float, typer.Option(help="how long each flap keeps the link down")] = 1.0,
    mode: Annotated[str, typer.Option(help="new connections while down: refuse or blackhole")] = "refuse",
    recovery_s: Annotated[float, typer.Option(min=0.5, max=3600, help="load after the flapping")] = 60.0,
    ack_timeout_s: Annotated[int, typer.Option(min=1, max=60, help="asked of the kanjo the drill starts")] = 10,
    wait_ack_deadline: Annotated[bool, typer.Option(help="upload the journals after every ack deadline")] = True,
    latency_ms_p99_max: Annotated[float, typer.Option(help="withdrawals after the flapping: p99 objective")] = 500.0,
) -> None:
    """The link between the ATMs and kanjo drops and returns again and again under load (a real TCP proxy)."""
    from kanjo.drills import FleetOptions, NetworkFlapOptions

    fleet = FleetOptions(atms=atms, cards=cards, withdrawals_per_s=rate, mix=mix, seed=seed,
                         device_timeout_ms=device_timeout_ms, retries=retries)
    _drill("network-flap", url, lambda: NetworkFlapOptions(
        fleet, flap_s, period_s, down_s, mode, recovery_s, ack_timeout_s, wait_ack_deadline, latency_ms_p99_max))


@drill_app.command("hot-account")
def drill_hot_account(
    json_output: Annotated[bool, typer.Option("--json", help="one JSON object on stdout (the only format)")] = True,
    url: UrlOption = None, atms: AtmsOption = 50, cards: CardsOption = 200, rate: RateOption = 5.0,
    mix: MixOption = "withdrawal=60,inquiry=20,deposit=15,transfer=5", seed: SeedOption = 20_260_303,
    device_timeout_ms: TimeoutOption = 5_000, retries: RetriesOption = 2,
    donations: Annotated[int, typer.Option(help="small transfers into the hot account")] = 200_000,
    spread_donations: Annotated[int, typer.Option(help="the same drive into many accounts, to compare")] = 50_000,
    donors: Annotated[int, typer.Option()] = 10_000, recipients: Annotated[int, typer.Option()] = 1_000,
    rounds: Annotated[int, typer.Option(help="spread and hot slices, alternating")] = 5,
    clients: Annotated[int, typer.Option(help="the drive's concurrent clients")] = 32,
    transfers_per_request: Annotated[int, typer.Option()] = 1,
    other_accounts: Annotated[int, typer.Option()] = 1_000,
    other_rate: Annotated[float, typer.Option(help="other customers' transfers per second")] = 50.0,
    baseline_s: SecondsOption = 5.0,
    latency_ms_p99_max: Annotated[float, typer.Option(help="other transfers and ATM operations: p99")] = 500.0,
    latency_factor_max: Annotated[float, typer.Option(help="other transfers' p99, hot over spread")] = 2.0,
    latency_slack_ms: Annotated[float, typer.Option(help="… or the spread p99 plus this")] = 20.0,
    throughput_ratio_min: Annotated[float, typer.Option(help="hot donations/s over spread")] = 0.8,
) -> None:
    """A donation drive: a flood of small transfers into one account alongside normal traffic (2011)."""
    from kanjo.drills import FleetOptions, HotAccountOptions

    fleet = FleetOptions(atms=atms, cards=cards, withdrawals_per_s=rate, mix=mix, seed=seed,
                         device_timeout_ms=device_timeout_ms, retries=retries)
    _drill("hot-account", url, lambda: HotAccountOptions(
        fleet, donations, spread_donations, donors, recipients, rounds, clients, transfers_per_request,
        other_accounts, other_rate, baseline_s, latency_ms_p99_max, latency_factor_max, latency_slack_ms,
        throughput_ratio_min))


@drill_app.command("month-end-bulk")
def drill_month_end_bulk(
    json_output: Annotated[bool, typer.Option("--json", help="one JSON object on stdout (the only format)")] = True,
    url: UrlOption = None, atms: AtmsOption = 1_000, cards: CardsOption = 2_000, rate: RateOption = 100.0,
    mix: MixOption = "withdrawal=58,inquiry=20,deposit=15,transfer=4,loan_draw=2,time_deposit=1",
    seed: SeedOption = 20_260_303, device_timeout_ms: TimeoutOption = 5_000, retries: RetriesOption = 2,
    items: Annotated[int, typer.Option(min=2, max=2_000_000, help="items of the concentrated posting")] = 700_000,
    accounts: Annotated[int, typer.Option(min=1, max=1_000_000, help="accounts the items credit")] = 10_000,
    short_share: Annotated[float, typer.Option(min=0, max=0.99, help="space left, as a share of the posting")] = 0.5,
    chunk_items: Annotated[int, typer.Option(min=1, max=8_190, help="items posted per chunk")] = 2_000,
    baseline_s: SecondsOption = 10.0,
    phase_s: Annotated[float, typer.Option(min=0.5, max=3600, help="fleet phase length while the posting runs")] = 10.0,
    alert_s_max: Annotated[float, typer.Option(help="refusal → alert naming the limit")] = 60.0,
    posting_s_max: Annotated[float, typer.Option(help="the drill stops waiting for the posting after this")] = 900.0,
    latency_ms_p99_max: Annotated[float, typer.Option(help="withdrawals, inquiries, deposits: p99 objective")] = 500.0,
) -> None:
    """The 2/28 month end: a 700,000-item concentrated posting meets a capacity limit provisioned too small."""
    from kanjo.drills import FleetOptions, MonthEndBulkOptions

    fleet = FleetOptions(atms=atms, cards=cards, withdrawals_per_s=rate, mix=mix, seed=seed,
                         device_timeout_ms=device_timeout_ms, retries=retries)
    _drill("month-end-bulk", url, lambda: MonthEndBulkOptions(
        fleet, items, accounts, short_share, chunk_items, baseline_s, phase_s, alert_s_max, posting_s_max,
        latency_ms_p99_max))


@drill_app.command("batch-overrun")
def drill_batch_overrun(
    json_output: Annotated[bool, typer.Option("--json", help="one JSON object on stdout (the only format)")] = True,
    url: UrlOption = None, atms: AtmsOption = 200, cards: CardsOption = 2_000, rate: RateOption = 30.0,
    mix: MixOption = "withdrawal=58,inquiry=20,deposit=15,transfer=4,loan_draw=2,time_deposit=1",
    seed: SeedOption = 20_260_303, device_timeout_ms: TimeoutOption = 5_000, retries: RetriesOption = 2,
    items: Annotated[int, typer.Option(min=1, max=10_000, help="items of each concentrated posting")] = 2_000,
    chunk_items: Annotated[int, typer.Option(min=1, max=8_190, help="items posted per chunk")] = 100,
    expected_s: Annotated[float, typer.Option(help="what each posting declares it takes")] = 6.0,
    slowdown: Annotated[float, typer.Option(help="the slow posting takes this many times its expected_s")] = 5.0,
    held_s: Annotated[float, typer.Option(help="the held posting keeps the day open this long after")] = 5.0,
    close_load_s: Annotated[float, typer.Option(help="ATM load while the day cuts off and closes")] = 10.0,
    close_timeout_s: Annotated[float, typer.Option(help="release → day closed")] = 60.0,
    alert_interval_s: Annotated[float, typer.Option(help="alert evaluation interval asked of the kanjo")] = 1.0,
    alert_within_s: Annotated[float, typer.Option(help="overrun threshold passed → alert open")] = 60.0,
    latency_ms_p99_max: Annotated[float, typer.Option(help="every ATM operation, both phases: p99")] = 500.0,
) -> None:
    """A night batch runs several times slower than expected and a mandatory job is held, under ATM load."""
    from kanjo.drills import BatchOverrunOptions, FleetOptions

    fleet = FleetOptions(atms=atms, cards=cards, withdrawals_per_s=rate, mix=mix, seed=seed,
                         device_timeout_ms=device_timeout_ms, retries=retries)
    _drill("batch-overrun", url, lambda: BatchOverrunOptions(
        fleet, items, chunk_items, expected_s, slowdown, held_s, close_load_s, close_timeout_s, alert_interval_s,
        alert_within_s, latency_ms_p99_max))


def _drill(name: str, url: str | None, make_options: Any) -> None:
    """Check the options, run the drill (on the configured PostgreSQL unless --url), print its JSON object, exit
    0 when every criterion passed, 1 when one failed, 2 when the drill could not run."""
    from kanjo.drills import run_drill

    try:
        options = make_options()
        options.check()
    except ValueError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    if url is not None:
        report: Any = _run(run_drill(name, options, url=url))
    else:
        with database(load_settings()) as dsn:
            report = _run(run_drill(name, options, server_dsn=dsn.rpartition("/")[0] + "/postgres"))
    print(json.dumps(report, ensure_ascii=False), flush=True)
    raise typer.Exit(0 if report.get("passed") else 1 if "criteria" in report else 2)


KanjoUrlOption = Annotated[str, typer.Option("--url", help="the running kanjo to ask")]


@app.command()
def alerts(
    url: KanjoUrlOption = "http://127.0.0.1:8000",
    state: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    limit: Annotated[int, typer.Option(min=1, help="alerts per page (at most ops_alerts_page_rows_max)")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="alerts skipped, newest first")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="the JSON answer instead of a table")] = False,
) -> None:
    """The alerts of a running kanjo (open ones by default), newest first; exit 2 when it cannot be read."""
    _show("/v1/alerts", url, {"state": state, "limit": limit, "offset": offset}, json_output, "alerts_table")


@app.command()
def capacity(
    url: KanjoUrlOption = "http://127.0.0.1:8000",
    json_output: Annotated[bool, typer.Option("--json", help="the JSON answer instead of a table")] = False,
) -> None:
    """Every named limit of a running kanjo: usage, trend per hour and estimated time to full, fullest first."""
    _show("/v1/capacity", url, None, json_output, "capacity_table")


def _show(path: str, url: str, params: dict[str, str | int] | None, json_output: bool, table: str) -> None:
    from kanjo import ops

    try:
        body = ops.fetch(url, path, params)
    except ops.ConsoleError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    if json_output:
        print(json.dumps(body, ensure_ascii=False), flush=True)
    else:
        Console().print(getattr(ops, table)(body))


batch_app = typer.Typer(help="The batch of a running kanjo: each business date's jobs, holds, reruns.",
                        no_args_is_help=True)
app.add_typer(batch_app, name="batch")
BatchUrl = Annotated[str, typer.Option("--url", help="the running kanjo")]
BatchDate = Annotated[str | None, typer.Option("--date", help="business date YYYY-MM-DD (default: tonight's)")]
Operator = Annotated[str, typer.Option("--by", help="who acts, for the job's history")]


@batch_app.command("list")
def batch_list(url: BatchUrl = "http://127.0.0.1:8000", date: BatchDate = None,
               json_output: Annotated[bool, typer.Option("--json", help="the JSON answer")] = False) -> None:
    """A date's jobs: state, progress, estimated finish, overrun, and what keeps the day from closing."""
    from kanjo.batch import console

    report = _batch_call(lambda: console.call(url, "GET", console.day_path(date, url)))
    if json_output:
        print(json.dumps(report, ensure_ascii=False), flush=True)
    else:
        Console().print(console.jobs_table(report))


@batch_app.command("run")
def batch_run(job: str, url: BatchUrl = "http://127.0.0.1:8000", date: BatchDate = None, by: Operator = "operator",
              follow: Annotated[bool, typer.Option(help="show its progress until it ends")] = True) -> None:
    """Start a waiting job now (before its not-before time); exit 1 unless it succeeds (when followed)."""
    _batch_act("run", job, url, date, by, follow)


@batch_app.command("hold")
def batch_hold(job: str, url: BatchUrl = "http://127.0.0.1:8000", date: BatchDate = None,
               by: Operator = "operator") -> None:
    """Keep a job from starting; a running one stops at its next chunk boundary."""
    _batch_act("hold", job, url, date, by, False)


@batch_app.command("release")
def batch_release(job: str, url: BatchUrl = "http://127.0.0.1:8000", date: BatchDate = None,
                  by: Operator = "operator") -> None:
    """Let a held job start, or resume from its checkpoint."""
    _batch_act("release", job, url, date, by, False)


@batch_app.command("rerun")
def batch_rerun(job: str, url: BatchUrl = "http://127.0.0.1:8000", date: BatchDate = None, by: Operator = "operator",
                follow: Annotated[bool, typer.Option(help="show its progress until it ends")] = True) -> None:
    """Run a finished or failed job again (idempotent: nothing done is done twice)."""
    _batch_act("rerun", job, url, date, by, follow)


def _batch_act(action: str, job: str, url: str, date: str | None, by: str, follow: bool) -> None:
    from kanjo.batch import console

    def act() -> dict[str, Any]:
        path = f"{console.day_path(date, url)}/jobs/{job}"
        answer = console.call(url, "POST", f"{path}/{action}", {"by": by})
        return console.follow(url, path) if follow else answer
    job_report = _batch_call(act)
    print(json.dumps({k: job_report[k] for k in ("business_date", "name", "state", "held", "done_items",
                                                 "total_items", "result", "error")}, ensure_ascii=False), flush=True)
    if follow and job_report["state"] != "succeeded":
        raise typer.Exit(1)


def _batch_call(fn: Any) -> Any:
    from kanjo.batch import console

    try:
        return fn()
    except console.ConsoleError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
