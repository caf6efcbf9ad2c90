-- An operator may start a job before its not-before time (`kanjo batch run`): its predecessors still rule.
ALTER TABLE batch.jobs ADD COLUMN not_before_waived boolean NOT NULL DEFAULT false;
