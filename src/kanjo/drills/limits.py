"""Named limits of the drills: sizes and timings a drill accepts, the proxy's connections, the samples it keeps."""

from kanjo.kernel.limits import limits

ATMS_MAX = limits.declare(
    "drill_atms_max", 100_000, "machines",
    "ATMs one drill drives (the simulator's own maximum); the largest Japanese networks run about 30,000",
).maximum
CARDS_MAX = limits.declare(
    "drill_cards_max", 1_000_000, "cards", "card holders a drill seeds and the simulator holds in memory",
).maximum
WITHDRAWALS_PER_S_MAX = limits.declare(
    "drill_withdrawals_per_s_max", 5_000, "withdrawals/s",
    "offered withdrawals per second of a drill's fleet; far above what one all-in-one process carries today",
).maximum
PHASE_SECONDS_MAX = limits.declare(
    "drill_phase_seconds_max", 3_600, "seconds",
    "one phase of a drill (load before, during or after a fault); longer drills are several runs",
).maximum
PROBES_PER_S_MAX = limits.declare(
    "drill_probes_per_s_max", 200, "requests/s",
    "a drill's own probe requests (time deposits) per second, on top of the fleet's load",
).maximum
PROBE_SAMPLES_MAX = limits.declare(
    "drill_probe_samples_max", 1_000_000, "samples",
    "probe answers a drill keeps in memory to judge them by phase (about 200 bytes each)",
).maximum
BREAKER_SAMPLES_MAX = limits.declare(
    "drill_breaker_samples_max", 100_000, "samples",
    "breaker states a drill's watcher keeps (one per poll: three hours at ten a second)",
).maximum
PROXY_CONNECTIONS_MAX = limits.declare(
    "drill_proxy_connections_max", 1_024, "connections",
    "connections the drill's flapping proxy carries at once (each a pair of sockets); the fleet opens at most 256",
).maximum
FLAPS_MAX = limits.declare(
    "drill_flaps_max", 10_000, "flaps", "link-down windows in one network-flap drill",
).maximum
