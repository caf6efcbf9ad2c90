"""Named limits of the batch context."""

from kanjo.kernel.limits import limits

JOBS_PER_DAY_MAX = limits.declare(
    "batch_jobs_per_day_max", 200, "jobs",
    "a business date's plan is read whole on every scheduling tick; the bank's own day has about fifteen jobs",
).maximum
JOBS_RUNNING_MAX = limits.declare(
    "batch_jobs_running_max", 4, "jobs",
    "jobs running at once in this process: each holds a database connection and competes with online for CPU",
).maximum
BULK_ITEMS_PER_JOB_MAX = limits.declare(
    "batch_bulk_items_per_job_max", 2_000_000, "items",
    "one concentrated posting (センター集中記帳) job's work area; a larger file is split into several jobs",
).maximum
BULK_ITEMS_PER_REQUEST_MAX = limits.declare(
    "batch_bulk_items_per_request_max", 10_000, "items",
    "a concentrated posting sent over HTTP fits one request body; a larger file is loaded by the batch's own tools",
).maximum
BULK_CHUNK_ITEMS_MAX = limits.declare(
    "batch_bulk_chunk_items_max", 8_190, "items",
    "items posted and checkpointed together: one ledger request (its batch maximum)",
).maximum
HISTORY_ROWS_PER_JOB_MAX = limits.declare(
    "batch_history_rows_per_job_max", 1_000, "events",
    "events kept per job and date (starts, stops, holds, reruns); older ones are pruned",
).maximum
WORK_AREA_ITEMS = limits.declare(
    "batch_work_area_items_max", 5_000_000, "items",
    "the concentrated postings' work areas (batch.bulk_items, about 120 bytes an item): the space provisioned for the"
    " files of the dates not yet closed; a date's work areas are emptied when it closes",
    adjustable=True,
)
