"""Named limits of the hub: each partition's concurrency and queue, the products it routes, its sample buffers."""

from kanjo.kernel.limits import limits

# (partition, concurrency, queue, why) — sized for the all-in-one process on two cores, where a call mostly waits
# on PostgreSQL: the concurrency is how many calls of a channel may wait on products at once, the queue how many
# more may wait for a slot before the channel is told "busy" instead of hanging.
_PARTITION_SIZES = (
    ("own_atm", 64, 512, "the bank's own ATMs: the largest online channel; 512 waiting is about one second of a "
     "month-end peak at the ATM deadline"),
    ("other_atm", 64, 512, "other-bank and convenience ATMs: as large as the own ATMs, kept apart so one network's "
     "flood cannot take the other's slots"),
    ("teller", 32, 256, "branch tellers: a few hundred terminals, each with one customer at a time"),
    ("internet", 32, 256, "internet banking: medium priority, shed before ATMs and tellers when the machine saturates"),
    ("open_api", 16, 128, "open-API clients (電子決済等代行業者): medium priority and the smallest online budget"),
    ("batch", 4, 64, "batch jobs call in chunks and pace themselves; four at once leave the cores to online work"),
)


def _declare(partition: str, concurrency: int, queue: int, why: str) -> tuple[int, int]:
    concurrency_max = limits.declare(f"hub_{partition}_concurrency_max", concurrency, "calls",
                                     f"calls of the {partition} partition running at once; {why}").maximum
    queue_max = limits.declare(f"hub_{partition}_queue_max", queue, "calls",
                               f"calls of the {partition} partition waiting for a slot; {why}").maximum
    return concurrency_max, queue_max


PARTITION_SIZES: dict[str, tuple[int, int]] = {name: _declare(name, c, q, why) for name, c, q, why in _PARTITION_SIZES}

PRODUCTS_MAX = limits.declare(
    "hub_products_max", 64, "products",
    "products the hub routes to; each has a breaker and metric series per partition, so the count bounds both",
).maximum
DEADLINE_MS_MAX = limits.declare(
    "hub_deadline_ms_max", 600_000, "ms",
    "the longest deadline or product timeout: ten minutes, for a batch chunk; online deadlines are seconds",
).maximum
LATENCY_SAMPLES_MAX = limits.declare(
    "hub_latency_samples_max", 1024, "samples",
    "recent latencies kept per high-priority partition to compute the p99 that paces batch work",
).maximum
LOOP_LAG_SAMPLES_MAX = limits.declare(
    "hub_loop_lag_samples_max", 256, "samples",
    "event-loop lag samples kept for the shedding window (one per sampler tick)",
).maximum
