"""The ops context's metrics (Prometheus): open alerts by severity, evaluations by outcome."""

from prometheus_client import Counter, Gauge

OPEN_ALERTS = Gauge("kanjo_ops_open_alerts", "alerts open now, by severity", ["severity"])
EVALUATIONS = Counter("kanjo_ops_evaluations", "alert evaluations by outcome (ok, unsaved = the alerts could not be "
                      "written and are kept for the next one, failed)", ["outcome"])
