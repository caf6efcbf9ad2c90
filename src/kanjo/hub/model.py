"""The hub's vocabulary: channel partitions and their policies, product policies, admission thresholds, and the
refusals every channel must map to its customer's words (each with a `code`, a `message` and `retry_after_s`).

Pure domain (standard library and the limits registry only).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from kanjo.hub.limits import DEADLINE_MS_MAX, PARTITION_SIZES

PRODUCT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Partition(enum.StrEnum):
    """A channel's bulkhead (MINORI's 処理区画): its own concurrency, queue, deadline and priority."""

    OWN_ATM = "own_atm"
    OTHER_ATM = "other_atm"  # other banks' and convenience-store ATMs
    INTERNET = "internet"
    TELLER = "teller"
    OPEN_API = "open_api"
    BATCH = "batch"


class Priority(enum.IntEnum):
    """Admission order under saturation: a partition is shed when the shed level is above its priority."""

    LOW = 0  # batch: shed first
    MEDIUM = 1  # internet, open API: shed when the machine is badly saturated
    HIGH = 2  # ATMs and tellers: never shed by admission, only by their own partition limits


class ShedLevel(enum.IntEnum):
    NONE = 0
    BATCH = 1  # LOW priority refused
    ONLINE_MEDIUM = 2  # LOW and MEDIUM refused


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


def _positive_ms(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= DEADLINE_MS_MAX:
        raise ValueError(f"{name} must be a whole number of milliseconds in 1..{DEADLINE_MS_MAX:,}, not {value!r}")


@dataclass(frozen=True, slots=True)
class PartitionPolicy:
    partition: Partition
    concurrency_max: int
    queue_max: int
    deadline_ms: int
    priority: Priority

    def __post_init__(self) -> None:
        concurrency_limit, queue_limit = PARTITION_SIZES[Partition(self.partition).value]
        if not 1 <= self.concurrency_max <= concurrency_limit:
            raise ValueError(f"{self.partition}: concurrency_max must be in 1..{concurrency_limit} "
                             f"(hub_{self.partition}_concurrency_max), not {self.concurrency_max}")
        if not 0 <= self.queue_max <= queue_limit:
            raise ValueError(f"{self.partition}: queue_max must be in 0..{queue_limit} "
                             f"(hub_{self.partition}_queue_max), not {self.queue_max}")
        _positive_ms(f"{self.partition}: deadline_ms", self.deadline_ms)


def _partition(p: Partition, deadline_ms: int, priority: Priority) -> PartitionPolicy:
    concurrency_max, queue_max = PARTITION_SIZES[p.value]
    return PartitionPolicy(p, concurrency_max, queue_max, deadline_ms, priority)


# Deadlines: an ATM gives up (and returns the card) after its own ~10 s; the hub answers well before, so the ATM
# BFF has time to void and say so. Batch calls are chunks of bulk work: a minute each at most.
DEFAULT_PARTITIONS: dict[Partition, PartitionPolicy] = {
    Partition.OWN_ATM: _partition(Partition.OWN_ATM, 2_000, Priority.HIGH),
    Partition.OTHER_ATM: _partition(Partition.OTHER_ATM, 2_000, Priority.HIGH),
    Partition.TELLER: _partition(Partition.TELLER, 3_000, Priority.HIGH),
    Partition.INTERNET: _partition(Partition.INTERNET, 5_000, Priority.MEDIUM),
    Partition.OPEN_API: _partition(Partition.OPEN_API, 5_000, Priority.MEDIUM),
    Partition.BATCH: _partition(Partition.BATCH, 60_000, Priority.LOW),
}


@dataclass(frozen=True, slots=True)
class ProductPolicy:
    """A product's timeout and breaker. The breaker's window is time-based: the last `window_ms`, in ten buckets."""

    product: str
    timeout_ms: int = 1_000
    failure_ratio_to_open: float = 0.5
    window_requests_min: int = 20
    open_ms: int = 5_000
    half_open_probes: int = 3
    window_ms: int = 10_000

    def __post_init__(self) -> None:
        if not isinstance(self.product, str) or not PRODUCT_NAME.match(self.product):
            raise ValueError(f"a product name is snake_case, 1 to 64 characters: {self.product!r}")
        for name in ("timeout_ms", "open_ms", "window_ms"):
            _positive_ms(f"{self.product}: {name}", getattr(self, name))
        if not 0.0 < self.failure_ratio_to_open <= 1.0:
            raise ValueError(f"{self.product}: failure_ratio_to_open must be in (0, 1]")
        if not 1 <= self.window_requests_min <= 100_000:
            raise ValueError(f"{self.product}: window_requests_min must be in 1..100,000")
        if not 1 <= self.half_open_probes <= 100:
            raise ValueError(f"{self.product}: half_open_probes must be in 1..100")


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    """When the machine saturates: event-loop lag thresholds, the in-flight level that stops batch, batch pacing."""

    lag_shed_batch_ms: float = 20.0  # above it, BATCH calls are refused
    lag_shed_medium_ms: float = 100.0  # above it, INTERNET and OPEN_API are refused too
    in_flight_shed_batch_min: int = 192  # online calls in flight at which batch is refused (a third of the budget)
    sample_interval_ms: int = 50  # the lag sampler's tick
    lag_window_ms: int = 1_000  # lag is the worst sample of this window: one calm second ends shedding
    atm_latency_p99_objective_ms: int = 500  # the ATM partitions' latency objective that batch pace protects
    pace_window_ms: int = 10_000  # ATM latencies older than this no longer slow batch down

    def __post_init__(self) -> None:
        if not 0 < self.lag_shed_batch_ms < self.lag_shed_medium_ms:
            raise ValueError("admission: 0 < lag_shed_batch_ms < lag_shed_medium_ms")
        if self.in_flight_shed_batch_min < 1:
            raise ValueError("admission: in_flight_shed_batch_min must be at least 1")
        for name in ("sample_interval_ms", "lag_window_ms", "atm_latency_p99_objective_ms", "pace_window_ms"):
            _positive_ms(f"admission: {name}", getattr(self, name))
        if self.sample_interval_ms > self.lag_window_ms:
            raise ValueError("admission: sample_interval_ms must not exceed lag_window_ms")


# -- refusals -----------------------------------------------------------------------------------------------


class HubError(Exception):
    """Every refusal or failure the hub itself raises: a short `code`, a `message` for people, `retry_after_s`."""

    code = "hub_error"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        self.message = message
        self.retry_after_s = retry_after_s
        super().__init__(message)


class ProductUnavailable(HubError):
    """The product's breaker is open: refused without calling it. Nothing ran; a retry later is safe."""

    code = "product_unavailable"

    def __init__(self, product: str, still_working: list[str], retry_after_s: float | None = None) -> None:
        self.product = product
        self.still_working = still_working
        names = ", ".join(still_working) if still_working else "none"
        super().__init__(f"this service is temporarily unavailable; these still work: {names}", retry_after_s)


class ProductFailed(HubError):
    """A system error in the product (an exception that is not one of its business answers, or a timeout).

    The product may have done part of its work: the outcome is unknown, retry with the same ids."""

    code = "product_failed"

    def __init__(self, product: str, cause: BaseException, *, timed_out: bool = False) -> None:
        self.product = product
        self.cause = cause
        self.timed_out = timed_out
        what = "did not answer in time" if timed_out else f"failed ({type(cause).__name__})"
        super().__init__(f"{product} {what}; the outcome is unknown: retry with the same ids")


class PartitionBusy(HubError):
    """The partition's queue is full: refused at once, nothing ran."""

    code = "partition_busy"

    def __init__(self, partition: Partition, retry_after_s: float) -> None:
        self.partition = partition
        super().__init__(f"the {partition} partition is busy; retry in {retry_after_s:g} s", retry_after_s)


class Shed(HubError):
    """Admission control refused a lower-priority call while the machine is saturated; nothing ran."""

    code = "shed"

    def __init__(self, partition: Partition, retry_after_s: float) -> None:
        self.partition = partition
        super().__init__(f"the {partition} partition is paused while online work catches up; "
                         f"retry in {retry_after_s:g} s", retry_after_s)


class DeadlineExceeded(HubError):
    """The call could not start before its deadline; it never ran."""

    code = "deadline_exceeded"

    def __init__(self, partition: Partition, product: str, deadline_ms: int) -> None:
        self.partition = partition
        self.product = product
        self.deadline_ms = deadline_ms
        super().__init__(f"{product} could not be reached from {partition} within {deadline_ms:,} ms; nothing ran")


class NotRouted(HubError):
    """The partition may not call this product (or no such product is registered): a wiring error."""

    code = "not_routed"

    def __init__(self, partition: Partition, product: str) -> None:
        self.partition = partition
        self.product = product
        super().__init__(f"the {partition} partition is not routed to {product!r}")


class UnknownProduct(HubError, LookupError):
    """An operator named a product the hub does not know."""

    code = "unknown_product"

    def __init__(self, product: str) -> None:
        self.product = product
        super().__init__(f"no product {product!r} is registered in the hub")
