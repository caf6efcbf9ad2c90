"""The hub (MINORI's 取引メイン and メインハブ): every channel reaches a product through its own partition.

A call passes admission (shedding lower priorities when the machine saturates), takes a slot of the caller's
partition (bounded queue, deadline), passes the product's breaker, and runs under the shorter of the product's
timeout and what is left of the deadline. A product's business refusals come back unchanged; any other error or a
timeout counts toward that product's breaker only and comes back as `ProductFailed`. So a hanging product costs
each partition at most its own concurrency until its breaker opens, then nothing; no product error ever counts
against a partition. Products answer through their own code: they must not call the hub themselves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from kanjo.hub import faults, telemetry
from kanjo.hub.admission import Admission, LagSampler
from kanjo.hub.breaker import Breaker, Permit
from kanjo.hub.bulkhead import Bulkhead, DeadlinePassed
from kanjo.hub.faults import Fault, FaultMode
from kanjo.hub.limits import DEADLINE_MS_MAX
from kanjo.hub.model import (
    BREAKER_GAUGE,
    DEFAULT_PARTITIONS,
    AdmissionPolicy,
    BreakerState,
    DeadlineExceeded,
    HubError,
    NotRouted,
    Partition,
    PartitionBusy,
    PartitionPolicy,
    ProductFailed,
    ProductPolicy,
    ProductUnavailable,
    Shed,
    UnknownProduct,
)
from kanjo.kernel.clock import Clock, SystemClock
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import limits
from kanjo.platform.metrics import Children

T = TypeVar("T")
log = structlog.get_logger("kanjo.hub")

ATM_PARTITIONS = frozenset({Partition.OWN_ATM, Partition.OTHER_ATM})
QUEUE_DEGRADED_RATIO = 0.8  # a partition whose queue is this full is reported degraded
REASON_CHARS_MAX = 200


@dataclass
class _Product:
    policy: ProductPolicy
    breaker: Breaker
    business_errors: tuple[type[BaseException], ...]


class Hub:
    """The in-process hub. Bound to one event loop; `start()` the lag sampler, `await stop()` it."""

    def __init__(self, partitions: Mapping[Partition, PartitionPolicy] = DEFAULT_PARTITIONS,
                 admission: AdmissionPolicy | None = None, *, clock: Clock | None = None,
                 now_s: Callable[[], float] = time.monotonic) -> None:
        missing = sorted(p.value for p in Partition if p not in partitions)
        if missing:
            raise ValueError(f"every partition needs a policy; missing: {', '.join(missing)}")
        for partition, policy in partitions.items():
            invariant(policy.partition == partition, f"the policy of {partition} names {policy.partition}")
        self._bulkheads = {p: Bulkhead(partitions[p], self._bulkhead_changed) for p in Partition}
        self.admission = Admission(admission or AdmissionPolicy(), self._online_in_flight, now_s)
        self._sampler = LagSampler(self.admission, self._lag_sampled)
        self._products: dict[str, _Product] = {}
        self._routes: dict[Partition, tuple[str, ...]] = {p: () for p in Partition}
        self._faults: dict[str, Fault] = {}  # at most one per product: bounded by hub_products_max
        # calls by (partition, product, outcome), as kanjo_hub_requests counts them but for this hub alone: bounded by
        # the partitions, hub_products_max and the outcomes
        self._calls: dict[tuple[str, str, str], int] = {}
        self._clock = clock or SystemClock()
        self._now_s = now_s
        self._requests = Children(telemetry.REQUESTS)
        self._latency = Children(telemetry.LATENCY_SECONDS)
        for partition, bulkhead in self._bulkheads.items():  # read when scraped, not set on every change
            telemetry.IN_FLIGHT.labels(partition=partition.value).set_function(_reader(bulkhead, "in_flight"))
            telemetry.QUEUE_DEPTH.labels(partition=partition.value).set_function(_reader(bulkhead, "queued"))

    # -- wiring (the composition root) ---------------------------------------------------------------------

    def register_product(self, name: str, policy: ProductPolicy,
                         business_errors: Iterable[type[BaseException]] = ()) -> None:
        """A product the hub may route to; `business_errors` are its answers (refusals), never failures."""
        if policy.product != name:
            raise ValueError(f"the policy of {name!r} names {policy.product!r}")
        if name in self._products:
            raise ValueError(f"product {name!r} is already registered")
        limits.check("hub_products_max", len(self._products) + 1)
        answers = tuple(business_errors)
        for kind in answers:
            if not (isinstance(kind, type) and issubclass(kind, Exception)) or issubclass(kind, HubError):
                raise ValueError(f"{kind!r} is not a business exception type")
        breaker = Breaker(policy, self._now_s, self._breaker_changed)
        self._products[name] = _Product(policy, breaker, answers)
        limits.observe("hub_products_max", len(self._products))
        telemetry.BREAKER_STATE.labels(product=name).set(0)

    def route(self, partition: Partition, products: Iterable[str]) -> None:
        """The products `partition` may call (replacing any earlier routing of that partition)."""
        names = tuple(dict.fromkeys(products))
        for name in names:
            if name not in self._products:
                raise UnknownProduct(name)
        self._routes[Partition(partition)] = names

    def start(self) -> None:
        """Start the loop-lag sampler (needs a running event loop). Idempotent."""
        self._sampler.start()

    async def stop(self) -> None:
        """Stop the sampler (calls in flight are not touched). Idempotent."""
        await self._sampler.stop()

    # -- calls -------------------------------------------------------------------------------------------------

    async def call(self, partition: Partition, product: str, operation: str, fn: Callable[[], Awaitable[T]], *,
                   deadline_ms: int | None = None) -> T:
        """Run `fn` (one `operation` of `product`) for a channel of `partition`; see the module docstring."""
        partition = Partition(partition)
        entry = self._routed(partition, product)
        bulkhead = self._bulkheads[partition]
        budget_ms = self._budget_ms(bulkhead.policy, deadline_ms)
        started = asyncio.get_running_loop().time()
        outcome, ran = "failed", False
        try:
            self._admit(partition, entry)
            try:
                await bulkhead.acquire(started + budget_ms / 1000)
            except DeadlinePassed:
                raise DeadlineExceeded(partition, product, budget_ms) from None
            ran = True
            try:
                result = await self._run(partition, entry, fn, started + budget_ms / 1000, budget_ms)
            finally:
                bulkhead.release()
            outcome = "ok"
            return result
        except BaseException as exc:
            outcome = _outcome_of(exc, entry)
            if isinstance(exc, ProductFailed):
                log.warning("hub.product_failed", partition=partition.value, product=product, operation=operation,
                            timed_out=exc.timed_out, error=repr(exc.cause)[:REASON_CHARS_MAX])
            raise
        finally:
            self._observe(partition, product, outcome, started, ran)

    def _routed(self, partition: Partition, product: str) -> _Product:
        entry = self._products.get(product)
        if entry is None or product not in self._routes[partition]:
            raise NotRouted(partition, product)
        return entry

    @staticmethod
    def _budget_ms(policy: PartitionPolicy, deadline_ms: int | None) -> int:
        if deadline_ms is None:
            return policy.deadline_ms
        if isinstance(deadline_ms, bool) or not isinstance(deadline_ms, int) or not 0 < deadline_ms <= DEADLINE_MS_MAX:
            raise ValueError(f"deadline_ms must be a whole number in 1..{DEADLINE_MS_MAX:,}, not {deadline_ms!r}")
        return deadline_ms

    def _admit(self, partition: Partition, entry: _Product) -> None:
        """Refuse before queueing: a shed priority, or a product whose breaker is open (fast, nothing called)."""
        if self.admission.sheds(self._bulkheads[partition].policy.priority):
            raise Shed(partition, self.admission.retry_after_s())
        if entry.breaker.refuses_now():
            raise self._unavailable(partition, entry)

    async def _run(self, partition: Partition, entry: _Product, fn: Callable[[], Awaitable[T]],
                   deadline_at: float, budget_ms: int) -> T:
        permit = entry.breaker.permit()  # again: the breaker may have opened while this call queued
        if permit is None:
            raise self._unavailable(partition, entry)
        remaining_s = deadline_at - asyncio.get_running_loop().time()
        if remaining_s <= 0:
            entry.breaker.abandon(permit)
            raise DeadlineExceeded(partition, entry.policy.product, budget_ms)
        timeout_s = entry.policy.timeout_ms / 1000
        timer = asyncio.timeout(min(timeout_s, remaining_s))
        fault = self._faults.get(entry.policy.product)
        try:
            async with timer:
                result = await (fn() if fault is None else faults.apply(fault, fn))
        except entry.business_errors:
            entry.breaker.record(permit, failed=False)
            raise
        except Exception as exc:
            raise self._failed(entry, permit, exc, timer.expired(), timeout_s, remaining_s) from exc
        except BaseException:
            entry.breaker.abandon(permit)
            raise
        entry.breaker.record(permit, failed=False)
        return result

    @staticmethod
    def _failed(entry: _Product, permit: Permit, exc: Exception, timed_out: bool, timeout_s: float,
                remaining_s: float) -> ProductFailed:
        """A system error counts toward the breaker, and so does a timeout — except when the caller's deadline left
        the product less than half its own timeout: that says more about the queue than about the product."""
        if timed_out and remaining_s < timeout_s / 2:
            entry.breaker.abandon(permit)
        else:
            entry.breaker.record(permit, failed=True)
        return ProductFailed(entry.policy.product, exc, timed_out=timed_out)

    def _unavailable(self, partition: Partition, entry: _Product) -> ProductUnavailable:
        still_working = [name for name in self._routes[partition]
                         if name != entry.policy.product and not self._products[name].breaker.is_open()]
        return ProductUnavailable(entry.policy.product, still_working, entry.breaker.retry_after_s())

    def _observe(self, partition: Partition, product: str, outcome: str, started: float, ran: bool) -> None:
        self._requests(partition.value, product, outcome).inc()
        key = (partition.value, product, outcome)
        self._calls[key] = self._calls.get(key, 0) + 1
        if not ran:
            return
        elapsed_s = asyncio.get_running_loop().time() - started
        self._latency(partition.value, product).observe(elapsed_s)
        if partition in ATM_PARTITIONS:
            self.admission.record_atm_latency_ms(elapsed_s * 1000)

    # -- operations ----------------------------------------------------------------------------------------------

    def force_open(self, product: str, reason: str) -> None:
        """Take a product out of service for every partition until `reset`."""
        self._product(product).breaker.force_open(_reason(reason))

    def reset(self, product: str, reason: str = "operator reset") -> None:
        """Close a product's breaker with a clean window (after a repair, or to end a forced opening)."""
        self._product(product).breaker.reset(_reason(reason))

    def inject_fault(self, product: str, mode: FaultMode, *, latency_ms: int = 0) -> None:
        """A drill: make every call of `product` fail, hang or answer late (in every partition) until cleared."""
        self._product(product)
        mode = FaultMode(mode)
        if isinstance(latency_ms, bool) or not isinstance(latency_ms, int) or not 0 <= latency_ms <= DEADLINE_MS_MAX:
            raise ValueError(f"latency_ms must be a whole number in 0..{DEADLINE_MS_MAX:,}")
        self._faults[product] = Fault(product, mode, latency_ms, self._wall_time(self._now_s()))
        log.warning("hub.fault_injected", product=product, mode=mode.value, latency_ms=latency_ms)

    def clear_fault(self, product: str) -> None:
        self._product(product)
        if self._faults.pop(product, None) is not None:
            log.warning("hub.fault_cleared", product=product)

    def faults(self) -> dict[str, dict[str, Any]]:
        """The faults injected now, by product."""
        return {name: {"mode": f.mode.value, "latency_ms": f.latency_ms, "since": f.since}
                for name, f in sorted(self._faults.items())}

    def batch_pace(self) -> float:
        """How fast batch work may go: 0 (stop) … 1 (full speed), from the loop lag and the ATMs' recent p99."""
        return self.admission.batch_pace()

    def _product(self, product: str) -> _Product:
        entry = self._products.get(product)
        if entry is None:
            raise UnknownProduct(product)
        return entry

    # -- health and policies ---------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Which partitions and products are up, degraded or down (down overall only when every product is)."""
        products = {name: self._product_health(entry) for name, entry in self._products.items()}
        partitions = {p.value: self._partition_health(p) for p in Partition}
        statuses = [h["status"] for h in (*products.values(), *partitions.values())]
        if products and all(h["status"] == "down" for h in products.values()):
            status = "down"
        else:
            status = "up" if all(s == "up" for s in statuses) else "degraded"
        admission = {"loop_lag_ms": round(self.admission.lag_ms(), 3), "shed_level": int(self.admission.level()),
                     "online_in_flight": self._online_in_flight(), "batch_pace": self.batch_pace()}
        return {"status": status, "partitions": partitions, "products": products, "admission": admission}

    def _partition_health(self, partition: Partition) -> dict[str, Any]:
        bulkhead = self._bulkheads[partition]
        shed = self.admission.sheds(bulkhead.policy.priority)
        degraded = shed or bulkhead.queue_ratio() >= QUEUE_DEGRADED_RATIO
        return {"status": "degraded" if degraded else "up", "in_flight": bulkhead.in_flight,
                "queued": bulkhead.queued, "shed": shed}

    def _product_health(self, entry: _Product) -> dict[str, Any]:
        breaker = entry.breaker
        breaker.is_open()  # lets an expired opening turn half-open before it is reported
        status = {BreakerState.CLOSED: "up", BreakerState.HALF_OPEN: "degraded", BreakerState.OPEN: "down"}
        return {"status": status[breaker.state], "breaker": breaker.state.value,
                "error_ratio": round(breaker.error_ratio(), 4), "since": self._wall_time(breaker.since_s),
                "forced_reason": breaker.forced_reason}

    def call_counts(self) -> dict[tuple[str, str, str], int]:
        """Calls since this hub was made, by (partition, product, outcome): the outcomes of `kanjo_hub_requests`."""
        return dict(self._calls)

    def policies(self) -> dict[str, Any]:
        """The partitions, products, routes and admission thresholds in force."""
        return {
            "partitions": {p.value: {"concurrency_max": b.policy.concurrency_max, "queue_max": b.policy.queue_max,
                                     "deadline_ms": b.policy.deadline_ms, "priority": b.policy.priority.name.lower()}
                           for p, b in self._bulkheads.items()},
            "products": {name: {**{k: v for k, v in dataclasses.asdict(e.policy).items() if k != "product"},
                                "business_errors": [kind.__name__ for kind in e.business_errors]}
                         for name, e in self._products.items()},
            "routes": {p.value: list(names) for p, names in self._routes.items()},
            "admission": dataclasses.asdict(self.admission.policy),
        }

    def _wall_time(self, monotonic_s: float) -> str:
        ago_ns = int((self._now_s() - monotonic_s) * 1e9)
        at = dt.datetime.fromtimestamp((self._clock.now_ns() - ago_ns) / 1e9, dt.UTC)
        return at.isoformat(timespec="milliseconds")

    # -- telemetry callbacks -----------------------------------------------------------------------------------------

    def _online_in_flight(self) -> int:
        return sum(b.in_flight for p, b in self._bulkheads.items() if p is not Partition.BATCH)

    def _bulkhead_changed(self, bulkhead: Bulkhead) -> None:
        name = bulkhead.policy.partition.value
        limits.observe(f"hub_{name}_queue_max", bulkhead.queued)
        limits.observe(f"hub_{name}_concurrency_max", bulkhead.in_flight)

    def _lag_sampled(self, lag_ms: float) -> None:
        telemetry.LOOP_LAG_SECONDS.set(max(lag_ms, 0.0) / 1000)
        telemetry.SHED_LEVEL.set(int(self.admission.level()))

    @staticmethod
    def _breaker_changed(breaker: Breaker, old: BreakerState, new: BreakerState, reason: str) -> None:
        telemetry.BREAKER_STATE.labels(product=breaker.product).set(BREAKER_GAUGE[new])
        telemetry.BREAKER_TRANSITIONS.labels(product=breaker.product, state=new.value).inc()
        emit = log.warning if new is BreakerState.OPEN else log.info
        emit("hub.breaker_state_changed", product=breaker.product, previous=old.value, state=new.value,
             reason=reason, error_ratio=round(breaker.error_ratio(), 4), window_calls=breaker.window_calls())


def _outcome_of(exc: BaseException, entry: _Product) -> str:
    if isinstance(exc, ProductFailed):
        return "timeout" if exc.timed_out else "failed"
    kinds: tuple[tuple[type[BaseException], str], ...] = (
        (ProductUnavailable, "unavailable"), (PartitionBusy, "busy"), (Shed, "shed"),
        (DeadlineExceeded, "deadline"), (asyncio.CancelledError, "cancelled"),
    )
    for kind, outcome in kinds:
        if isinstance(exc, kind):
            return outcome
    return "refused" if isinstance(exc, entry.business_errors) else "failed"


def _reason(reason: str) -> str:
    reason = reason.strip() if isinstance(reason, str) else ""
    if not 1 <= len(reason) <= REASON_CHARS_MAX:
        raise ValueError(f"give a reason of 1 to {REASON_CHARS_MAX} characters")
    return reason


def _reader(bulkhead: Bulkhead, attribute: str) -> Callable[[], float]:
    """A gauge's value read off the bulkhead when /metrics is scraped."""
    return lambda: float(getattr(bulkhead, attribute))
