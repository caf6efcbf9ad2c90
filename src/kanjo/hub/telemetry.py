"""The hub's metrics (Prometheus): calls and outcomes by partition and product, latency, breakers, queues, lag."""

from prometheus_client import Counter, Gauge, Histogram

OUTCOMES = ("ok", "refused", "failed", "timeout", "unavailable", "busy", "shed", "deadline", "cancelled")

REQUESTS = Counter(
    "kanjo_hub_requests", "calls through the hub by partition, product and outcome "
    "(ok, refused = a business answer, failed, timeout, unavailable = breaker open, busy, shed, deadline, cancelled)",
    ["partition", "product", "outcome"],
)
LATENCY_SECONDS = Histogram(
    "kanjo_hub_latency_seconds", "time in the hub of a call that ran, queue wait included",
    ["partition", "product"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
BREAKER_STATE = Gauge("kanjo_hub_breaker_state", "a product's breaker: 0 closed, 1 half-open, 2 open", ["product"])
BREAKER_TRANSITIONS = Counter("kanjo_hub_breaker_transitions", "breaker state changes by product and new state",
                              ["product", "state"])
QUEUE_DEPTH = Gauge("kanjo_hub_queue_depth", "calls waiting for a slot of the partition", ["partition"])
IN_FLIGHT = Gauge("kanjo_hub_in_flight", "calls of the partition running", ["partition"])
LOOP_LAG_SECONDS = Gauge("kanjo_hub_loop_lag_seconds", "the event loop's latest measured lag")
SHED_LEVEL = Gauge("kanjo_hub_shed_level", "admission: 0 none, 1 batch shed, 2 internet and open API shed too")
