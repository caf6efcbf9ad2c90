-- One round trip for a small batch: everything a batch writes, in one statement (its own transaction).
-- Large batches use COPY instead (cheaper per row); both paths write exactly the same rows.
CREATE FUNCTION ledger.commit_small_batch(
    p_epoch bigint, p_last_timestamp bigint, p_check_ids uuid[],
    t_id uuid[], t_dr uuid[], t_cr uuid[], t_amount bigint[], t_pending uuid[], t_ud128 uuid[],
    t_ud64 bigint[], t_ud32 bigint[], t_timeout bigint[], t_ledger bigint[], t_code integer[],
    t_flags integer[], t_date date[], t_ts bigint[], t_expires bigint[],
    x_id uuid[], x_result smallint[], x_dr uuid[], x_cr uuid[], x_amount bigint[], x_pending uuid[],
    x_ud128 uuid[], x_ud64 bigint[], x_ud32 bigint[], x_timeout bigint[], x_ledger bigint[],
    x_code integer[], x_flags integer[], x_date date[], x_ts bigint[],
    s_pending uuid[], s_status smallint[], s_transfer uuid[], s_ts bigint[],
    u_id uuid[], u_dpe bigint[], u_dpo bigint[], u_cpe bigint[], u_cpo bigint[], u_flags integer[],
    h_id uuid[], h_ts bigint[], h_dpe bigint[], h_dpo bigint[], h_cpe bigint[], h_cpo bigint[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger.writer SET last_timestamp = p_last_timestamp, heartbeat_at = now()
     WHERE shard = 0 AND epoch = p_epoch;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'writer epoch % lost its lease', p_epoch USING ERRCODE = 'KJ001';
    END IF;
    INSERT INTO ledger.transfers (id, debit_account_id, credit_account_id, amount, pending_id, user_data_128,
        user_data_64, user_data_32, timeout, ledger, code, flags, business_date, timestamp, expires_at)
    SELECT * FROM unnest(t_id, t_dr, t_cr, t_amount, t_pending, t_ud128, t_ud64, t_ud32, t_timeout, t_ledger,
        t_code, t_flags, t_date, t_ts, t_expires);
    INSERT INTO ledger.rejected_transfers (id, result, debit_account_id, credit_account_id, amount, pending_id,
        user_data_128, user_data_64, user_data_32, timeout, ledger, code, flags, business_date, timestamp)
    SELECT * FROM unnest(x_id, x_result, x_dr, x_cr, x_amount, x_pending, x_ud128, x_ud64, x_ud32, x_timeout,
        x_ledger, x_code, x_flags, x_date, x_ts);
    INSERT INTO ledger.pending_resolutions (pending_id, status, transfer_id, timestamp)
    SELECT * FROM unnest(s_pending, s_status, s_transfer, s_ts);
    UPDATE ledger.accounts a SET debits_pending = u.dpe, debits_posted = u.dpo, credits_pending = u.cpe,
        credits_posted = u.cpo, flags = u.flags
      FROM unnest(u_id, u_dpe, u_dpo, u_cpe, u_cpo, u_flags) AS u(id, dpe, dpo, cpe, cpo, flags)
     WHERE a.id = u.id;
    INSERT INTO ledger.account_balances (account_id, timestamp, debits_pending, debits_posted, credits_pending,
        credits_posted)
    SELECT * FROM unnest(h_id, h_ts, h_dpe, h_dpo, h_cpe, h_cpo);
    IF cardinality(p_check_ids) > 0
       AND EXISTS (SELECT 1 FROM ledger.transfers WHERE id = ANY (p_check_ids)) THEN
        RAISE EXCEPTION 'a replayed id was taken as new' USING ERRCODE = 'KJ002';
    END IF;
END;
$$;
