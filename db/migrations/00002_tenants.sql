-- +goose Up

-- A tenant is a wallet app (brand) served by this deployment. Each but the
-- default one has its own server key pair: the public key its app pins, and
-- the secret key sealed with AES-256-GCM under KEY_ENCRYPTION_KEY, so the
-- database alone never reveals it. The default tenant's pair comes from the
-- environment (SECRET_KEY, PUBLIC_KEY).
ALTER TABLE tenants
    ADD COLUMN server_public_key bytea UNIQUE CHECK (length(server_public_key) = 33),
    ADD COLUMN server_secret_sealed bytea,
    -- Limits; NULL means the server-wide default from the environment.
    ADD COLUMN quota_bytes bigint CHECK (quota_bytes > 0),
    ADD COLUMN quota_objects integer CHECK (quota_objects > 0),
    ADD COLUMN rate_per_address_per_minute integer CHECK (rate_per_address_per_minute > 0),
    ADD COLUMN rate_per_node_per_minute integer CHECK (rate_per_node_per_minute > 0),
    ADD COLUMN new_nodes_per_address_per_hour integer CHECK (new_nodes_per_address_per_hour > 0),
    ADD CONSTRAINT tenants_key_pair CHECK (
        CASE WHEN id = 1
            THEN server_public_key IS NULL AND server_secret_sealed IS NULL
            ELSE server_public_key IS NOT NULL AND server_secret_sealed IS NOT NULL
        END);

-- Labels a tenant accepts beyond the protocol's built-in set, and the group
-- each lists under. An app that starts sending a new label needs a row here,
-- not a release.
CREATE TABLE tenant_labels (
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    label       text NOT NULL CHECK (label ~ '^[a-z0-9_]{1,64}$'),
    label_group text NOT NULL CHECK (label_group IN ('ldk', 'bitkit', 'other')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, label)
);

-- +goose Down
DROP TABLE tenant_labels;
ALTER TABLE tenants
    DROP CONSTRAINT tenants_key_pair,
    DROP COLUMN new_nodes_per_address_per_hour,
    DROP COLUMN rate_per_node_per_minute,
    DROP COLUMN rate_per_address_per_minute,
    DROP COLUMN quota_objects,
    DROP COLUMN quota_bytes,
    DROP COLUMN server_secret_sealed,
    DROP COLUMN server_public_key;
