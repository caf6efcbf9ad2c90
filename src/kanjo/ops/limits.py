"""The ops context's named limits: forecast samples, open and kept alerts, alert sources, pages."""

from kanjo.kernel.limits import limits

CAPACITY_SAMPLES = limits.declare(
    "ops_capacity_samples_max", 360, "samples",
    "usage samples kept per limit for its time-to-full forecast: six hours at one sample a minute, enough to see "
    "a day's trend, 16 bytes each, about 0.8 MB for every limit of the bank",
)
OPEN_ALERTS = limits.declare(
    "ops_open_alerts_max", 1_000, "alerts",
    "alerts open at once: one per failing component and rule; past a thousand an operator reads none of them, and "
    "every open alert is rewritten at each evaluation",
)
ALERT_HISTORY = limits.declare(
    "ops_alert_history_max", 10_000, "alerts",
    "resolved alerts kept for listing and incident reviews; the oldest resolved beyond it are pruned",
)
ALERT_SOURCES = limits.declare(
    "ops_alert_sources_max", 32, "sources",
    "condition sources other contexts register (batch, file exchange, …): one or two per context",
)
SOURCE_CONDITIONS = limits.declare(
    "ops_source_conditions_max", 200, "conditions",
    "conditions one source may report in one evaluation; more is a faulty source, reported as its own alert",
)
ALERTS_PAGE_ROWS = limits.declare(
    "ops_alerts_page_rows_max", 500, "alerts", "one page of the alerts list",
)

CAPACITY_SAMPLES_MAX = CAPACITY_SAMPLES.maximum
OPEN_ALERTS_MAX = OPEN_ALERTS.maximum
ALERT_HISTORY_MAX = ALERT_HISTORY.maximum
ALERT_SOURCES_MAX = ALERT_SOURCES.maximum
SOURCE_CONDITIONS_MAX = SOURCE_CONDITIONS.maximum
ALERTS_PAGE_ROWS_MAX = ALERTS_PAGE_ROWS.maximum
