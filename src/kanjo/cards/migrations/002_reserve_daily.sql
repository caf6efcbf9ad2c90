-- A withdrawal's daily-limit reservation in one round trip (the ATM's busiest path): lock the card, claim the
-- request id, read the day's usage, then count the amount or record the refusal — the same steps the service took in
-- six statements, in one transaction. A request id seen before answers 'replay' and the service reads what it did.
CREATE FUNCTION cards.reserve_daily(p_request uuid, p_card uuid, p_day date, p_amount bigint)
RETURNS TABLE (outcome text, used_minor bigint, limit_minor bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_limit bigint;
    v_used bigint;
BEGIN
    SELECT c.daily_limit_minor INTO v_limit FROM cards.cards c WHERE c.card_id = p_card FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown_card'::text, 0::bigint, 0::bigint;
        RETURN;
    END IF;
    INSERT INTO cards.reservations (request_id, card_id, business_date, amount_minor, state)
        VALUES (p_request, p_card, p_day, p_amount, 'reserved') ON CONFLICT (request_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'replay'::text, 0::bigint, v_limit;
        RETURN;
    END IF;
    SELECT u.used_minor INTO v_used FROM cards.daily_usage u WHERE u.card_id = p_card AND u.business_date = p_day;
    v_used := coalesce(v_used, 0);
    IF v_used + p_amount > v_limit THEN
        UPDATE cards.reservations r SET state = 'refused', remaining_minor = greatest(v_limit - v_used, 0),
               limit_minor = v_limit
         WHERE r.request_id = p_request;
        RETURN QUERY SELECT 'refused'::text, v_used, v_limit;
        RETURN;
    END IF;
    INSERT INTO cards.daily_usage AS u (card_id, business_date, used_minor, limit_minor)
        VALUES (p_card, p_day, p_amount, v_limit)
        ON CONFLICT (card_id, business_date) DO UPDATE
        SET used_minor = u.used_minor + EXCLUDED.used_minor, limit_minor = EXCLUDED.limit_minor
        RETURNING u.used_minor INTO v_used;
    RETURN QUERY SELECT 'reserved'::text, v_used, v_limit;
END
$$;
