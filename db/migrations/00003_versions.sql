-- +goose Up

-- Every accepted persist becomes a version of its object: 1, 2, 3, ... per
-- object. objects keeps the key, the latest version's number, size and hash;
-- object_versions keeps each version's bytes until retention drops them
-- (payload NULL), and its size and hash for good.
CREATE TABLE object_versions (
    object_id   bigint NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    version     bigint NOT NULL CHECK (version > 0),
    payload     bytea CHECK (length(payload) > 0),
    size        bigint NOT NULL CHECK (size > 0),
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (object_id, version),
    CHECK (payload IS NULL OR size = length(payload))
);

ALTER TABLE object_versions ALTER COLUMN payload SET STORAGE EXTERNAL;

-- Retention touches only versions that still hold bytes: a few per object,
-- however long its history.
CREATE INDEX object_versions_held ON object_versions (object_id, version) WHERE payload IS NOT NULL;

-- Every distinct body a node ever uploaded, by SHA-256. The signed hash
-- covers only the bytes, so without this a captured upload could be replayed
-- later to roll an object back, or under another label. Kept after retention
-- drops the bytes, and after the node deletes its account.
CREATE TABLE node_upload_hashes (
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    node_key    bytea NOT NULL CHECK (length(node_key) = 33),
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, node_key, sha256)
);

ALTER TABLE objects ADD COLUMN latest_version bigint NOT NULL DEFAULT 1 CHECK (latest_version > 0);

INSERT INTO object_versions (object_id, version, payload, size, sha256, created_at)
SELECT id, 1, payload, size, sha256, updated_at FROM objects;

INSERT INTO node_upload_hashes (tenant_id, node_key, sha256, created_at)
SELECT tenant_id, node_key, sha256, min(updated_at) FROM objects
GROUP BY tenant_id, node_key, sha256;

-- Dropping payload drops its checks too; size keeps one of its own.
ALTER TABLE objects
    ALTER COLUMN latest_version DROP DEFAULT,
    DROP COLUMN payload,
    ADD CONSTRAINT objects_size_positive CHECK (size > 0);

-- What nodes and operators did that is not in the data itself.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    node_key    bytea NOT NULL CHECK (length(node_key) = 33),
    action      text NOT NULL,
    network     text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL
);

CREATE INDEX audit_log_node ON audit_log (tenant_id, node_key, created_at);

-- persist_object stores a new version of one object in one round trip, with
-- the object row locked so concurrent persists of one object number their
-- versions 1, 2, 3 ... without gaps or duplicates. Outcomes:
--   'stored'    a new version (returned) was written;
--   'unchanged' the body equals the latest version: nothing written (a retry);
-- and SQLSTATE LBR01 (nothing written) when the node uploaded these bytes
-- before under any of its objects: a replay. p_allow_replay lets an operator
-- make an old version the latest again.
-- +goose StatementBegin
CREATE FUNCTION persist_object(
    p_tenant bigint, p_node bytea, p_network text, p_label text, p_channel bytea,
    p_payload bytea, p_sha256 bytea, p_now timestamptz, p_retain integer, p_allow_replay boolean)
RETURNS TABLE (outcome text, version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_latest bigint;
    v_sha bytea;
BEGIN
    INSERT INTO objects AS o (tenant_id, node_key, network, label, channel_id, latest_version, size, sha256, created_at, updated_at)
    VALUES (p_tenant, p_node, p_network, p_label, p_channel, 1, length(p_payload), p_sha256, p_now, p_now)
    ON CONFLICT (tenant_id, node_key, network, label, channel_id) DO NOTHING
    RETURNING o.id INTO v_id;

    IF v_id IS NOT NULL THEN
        v_latest := 1;
    ELSE
        SELECT o.id, o.latest_version, o.sha256 INTO v_id, v_latest, v_sha
        FROM objects AS o
        WHERE o.tenant_id = p_tenant AND o.node_key = p_node AND o.network = p_network
          AND o.label = p_label AND o.channel_id = p_channel
        FOR UPDATE;
        IF v_sha = p_sha256 THEN
            RETURN QUERY SELECT 'unchanged'::text, v_latest;
            RETURN;
        END IF;
        v_latest := v_latest + 1;
        UPDATE objects AS o
        SET latest_version = v_latest, size = length(p_payload), sha256 = p_sha256, updated_at = p_now
        WHERE o.id = v_id;
    END IF;

    INSERT INTO node_upload_hashes AS h (tenant_id, node_key, sha256, created_at)
    VALUES (p_tenant, p_node, p_sha256, p_now)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND AND NOT p_allow_replay THEN
        RAISE EXCEPTION 'body was uploaded before by this node' USING ERRCODE = 'LBR01';
    END IF;

    INSERT INTO object_versions (object_id, version, payload, size, sha256, created_at)
    VALUES (v_id, v_latest, p_payload, length(p_payload), p_sha256, p_now);

    UPDATE object_versions AS v
    SET payload = NULL
    WHERE v.object_id = v_id AND v.version <= v_latest - p_retain AND v.payload IS NOT NULL;

    RETURN QUERY SELECT 'stored'::text, v_latest;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION persist_object;
DROP TABLE audit_log;
ALTER TABLE objects ADD COLUMN payload bytea;
UPDATE objects AS o SET payload = v.payload
FROM object_versions AS v
WHERE v.object_id = o.id AND v.version = o.latest_version;
-- Objects whose latest payload is gone cannot exist at version 2.
DELETE FROM objects WHERE payload IS NULL;
ALTER TABLE objects
    DROP CONSTRAINT objects_size_positive,
    DROP COLUMN latest_version,
    ALTER COLUMN payload SET NOT NULL,
    ALTER COLUMN payload SET STORAGE EXTERNAL,
    ADD CONSTRAINT objects_payload_check CHECK (length(payload) > 0),
    ADD CONSTRAINT objects_check CHECK (size = length(payload));
DROP TABLE node_upload_hashes;
DROP TABLE object_versions;
