-- +goose Up

-- rate_count counts one request of a request that writes nothing durable of
-- its own (a login, a read), and refuses it past p_limit, as rate_hit does.
-- A counter lost in a crash costs nothing, so the transaction that counts it
-- does not wait for its WAL to reach the disk: set_config(..., true) turns
-- synchronous_commit off until the end of the calling statement's own
-- transaction. A limit of 0 (limits off) changes nothing at all, so a read
-- inside a durable transaction may pass 0. Never call it with a limit inside
-- a transaction that must be durable: persist_object calls rate_hit itself.
-- +goose StatementBegin
CREATE FUNCTION rate_count(p_key text, p_now timestamptz, p_window_seconds integer, p_limit integer)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    IF p_limit <= 0 THEN
        RETURN 0;
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    RETURN rate_hit(p_key, p_now, p_window_seconds, p_limit);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION rate_count(text, timestamptz, integer, integer);
