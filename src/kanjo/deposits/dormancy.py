"""The dormancy job (休眠): marks active ordinary accounts silent for longer than the configured silence as
dormant, set-based in batches, idempotent per (account, business date, job).

What counts as activity is the account's `last_activity_on`: a movement of money by the customer
(deposits.service touches it on every posting) and the use of the passbook — printing (記帳), 繰越 and
再発行 (passbook.py touches it too). Passbook use counts because it is the customer's own act and shows
the owner still has the passbook and follows the account: the point of marking dormant is to protect
accounts whose owner has lost touch (and that fraudsters buy or take over), and banks list 通帳記帳・繰越
among the activities (異動事由) of the 休眠預金等活用法. A loss report alone does not count (anyone can
phone one in). Revival stays at a branch, through the REVIVE action of deposits.change_status.

The default silence is 36 months: short enough that an account nobody watches is closed to ATM and remote
use long before the law's 10 years (leaving years to reach the customer before the deposit would go to
the Deposit Insurance Corporation), long enough that a saver who only looks at the account every year or
two is not locked out. Interest the bank credits is not the customer's activity and must not touch it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from kanjo.deposits.limits import (
    DORMANCY_ACCOUNTS_PER_BATCH_MAX,
    DORMANCY_BATCHES_PER_RUN_MAX,
    DORMANCY_SILENCE_MONTHS_MAX,
)
from kanjo.deposits.model import Action, Refused, Status, Subject, transition
from kanjo.deposits.service import Deposits
from kanjo.kernel.invariants import invariant
from kanjo.kernel.limits import LimitReached, limits

# 休眠預金等活用法 covers 普通 and 当座 deposits alike; a 総合口座 (with its overdraft) is left to the branch.
DORMANCY_SUBJECTS = [Subject.ORDINARY.value, Subject.CURRENT.value]
DORMANCY_JOB = "mark_dormant"
# The namespace of the SQL function deposits.job_request_id (migrations/003_passbook.sql): keep them equal.
JOB_NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-646f726d6e74")
DORMANCY_SILENCE_MONTHS_DEFAULT = 36
DORMANCY_SILENCE_MONTHS_MIN = 12  # less would lock out customers who simply use the account once a year


def job_request_id(account_id: int, business_date: dt.date, job: str = DORMANCY_JOB) -> int:
    """The request id of a daily job's change to one account; SQL derives the same (deposits.job_request_id)."""
    return uuid.uuid3(JOB_NAMESPACE, f"{uuid.UUID(int=account_id)}:{business_date.isoformat()}:{job}").int


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months earlier, or that month's last day (31 Mar − 1 month = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    return dt.date(year, month, min(day.day, (next_month - dt.timedelta(days=1)).day))


def silence_cutoff(business_date: dt.date, silence_months: int) -> dt.date:
    """Accounts whose last activity is before this day have been silent longer than `silence_months`."""
    if silence_months > DORMANCY_SILENCE_MONTHS_MAX:
        raise LimitReached(limits.get("deposit_dormancy_silence_months_max"), silence_months)
    if silence_months < DORMANCY_SILENCE_MONTHS_MIN:
        raise Refused("silence_too_short", f"a silence of {silence_months} months is shorter than the"
                      f" {DORMANCY_SILENCE_MONTHS_MIN} months below which customers would be locked out")
    return months_before(business_date, silence_months)


@dataclass(frozen=True, slots=True)
class DormancyRun:
    business_date: dt.date
    silence_months: int
    cutoff: dt.date  # last activity before this day: dormant
    marked: int  # accounts this run marked dormant (0 when the day's run is repeated)
    batches: int


# One statement per batch: choose silent active accounts (locking them, so a posting that touches one
# meanwhile takes it out of the batch), record each change under the job's request id, change the status.
# An account whose request id is already recorded (revived at a branch the same day) is left alone.
_MARK_BATCH = """
WITH due AS (
    SELECT a.id, a.last_activity_on, deposits.job_request_id(a.id, $1, $2) AS request_id
    FROM deposits.accounts a
    WHERE a.status = $3 AND a.subject = ANY($4::text[]) AND a.last_activity_on < $5
      AND NOT EXISTS (SELECT 1 FROM deposits.status_changes s
                      WHERE s.request_id = deposits.job_request_id(a.id, $1, $2))
    LIMIT $6
    FOR UPDATE OF a
), recorded AS (
    INSERT INTO deposits.status_changes (request_id, account_id, action, from_status, to_status, reason)
    SELECT request_id, id, $7, $3, $8, $9 || to_char(last_activity_on, 'YYYY-MM-DD') || $10
    FROM due
    ON CONFLICT (request_id) DO NOTHING
    RETURNING account_id
), marked AS (
    UPDATE deposits.accounts a SET status = $8 FROM recorded r WHERE a.id = r.account_id RETURNING a.id
)
SELECT (SELECT count(*) FROM due) AS selected, (SELECT count(*) FROM marked) AS marked
"""


async def mark_dormant_accounts(d: Deposits, business_date: dt.date,
                                silence_months: int = DORMANCY_SILENCE_MONTHS_DEFAULT) -> DormancyRun:
    """The daily job: every active ordinary account whose last activity is older than the silence becomes
    dormant through the account state machine, each change recorded under a request id derived from
    (account, business date, job). Running it again the same day changes nothing."""
    cutoff = silence_cutoff(business_date, silence_months)
    target = transition(Status.ACTIVE, Action.MARK_DORMANT)
    reason_tail = f" ({silence_months} months of silence; {DORMANCY_JOB} of {business_date.isoformat()})"
    marked = batches = 0
    while True:
        if batches >= DORMANCY_BATCHES_PER_RUN_MAX:
            raise LimitReached(limits.get("deposit_dormancy_batches_per_run_max"), batches + 1)
        async with d.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                _MARK_BATCH, business_date, DORMANCY_JOB, Status.ACTIVE.value, DORMANCY_SUBJECTS, cutoff,
                DORMANCY_ACCOUNTS_PER_BATCH_MAX, Action.MARK_DORMANT.value, target.value,
                "no customer activity since ", reason_tail)
        batches += 1
        invariant(row["marked"] <= row["selected"] <= DORMANCY_ACCOUNTS_PER_BATCH_MAX,
                  "a batch marks only accounts it selected, at most a batch of them")
        marked += row["marked"]
        if row["selected"] < DORMANCY_ACCOUNTS_PER_BATCH_MAX:
            return DormancyRun(business_date, silence_months, cutoff, marked, batches)
