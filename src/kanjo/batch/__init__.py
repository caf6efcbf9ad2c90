"""Batch and day change (センター集中記帳, 日付変更, 夜間バッチ): each business date's jobs as a DAG run by an
engine that resumes from checkpoints, the bank's daily catalogue, concentrated postings in resumable chunks paced by
online.

Public surface for other contexts: the engine and its handle types, the business date online posts on, the bank's
catalogue, concentrated postings, and the model's types. The HTTP router lives in `kanjo.batch.api`.
"""

from kanjo.batch.alerts import BatchAlertPolicy, alert_source
from kanjo.batch.bulk import Item, append, submit, transfer_id
from kanjo.batch.bulk import needs as bulk_needs
from kanjo.batch.bulk import runner as bulk_runner
from kanjo.batch.catalogue import CUT_OFF, bank_kinds, day_plan
from kanjo.batch.engine import CLOSING_JOB, Batch, BusinessDay, JobContext, Kind, Stopped
from kanjo.batch.model import BatchError, DayState, JobRun, JobSpec, JobState, Rerun
from kanjo.batch.store import work_area_items

__all__ = [
    "CLOSING_JOB",
    "CUT_OFF",
    "Batch",
    "BatchAlertPolicy",
    "BatchError",
    "BusinessDay",
    "DayState",
    "Item",
    "JobContext",
    "JobRun",
    "JobSpec",
    "JobState",
    "Kind",
    "Rerun",
    "Stopped",
    "alert_source",
    "append",
    "bank_kinds",
    "bulk_needs",
    "bulk_runner",
    "day_plan",
    "submit",
    "transfer_id",
    "work_area_items",
]
