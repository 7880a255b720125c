-- vss_auth_advance is vssauth.ReplayGuard.Advance: it raises the key's
-- mark to p_mark unless the recorded one is later than p_ceiling, and says
-- whether the request is admitted. A wallet sends the same header for every
-- request of a second, so most requests find the mark already at p_mark:
-- those only read it, and write nothing. A raise does not wait for the WAL
-- flush (set_config lasts to the end of the transaction): a lost mark only
-- reopens replays of the last moment.
CREATE OR REPLACE FUNCTION vss_auth_advance(p_tenant bigint, p_user text, p_ceiling timestamptz, p_mark timestamptz)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_mark timestamptz;
    v_admitted boolean;
BEGIN
    SELECT m.mark INTO v_mark FROM vss_auth_marks AS m
    WHERE m.tenant_id = p_tenant AND m.user_token = p_user;
    IF FOUND AND v_mark >= p_mark THEN
        RETURN v_mark <= p_ceiling;
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO vss_auth_marks AS m (tenant_id, user_token, mark)
    VALUES (p_tenant, p_user, p_mark)
    ON CONFLICT (tenant_id, user_token) DO UPDATE
    SET mark = greatest(m.mark, excluded.mark)
    WHERE m.mark <= p_ceiling
    RETURNING true INTO v_admitted;
    RETURN coalesce(v_admitted, false);
END
$$;
