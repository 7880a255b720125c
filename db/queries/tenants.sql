-- name: TenantGetBySlug :one
-- Everything a request needs to know about its tenant, in one round trip:
-- the row and its extra labels.
SELECT t.id, t.slug, t.name, t.server_public_key, t.server_secret_sealed, t.created_at, t.disabled_at,
       t.quota_bytes, t.quota_objects, t.rate_per_address_per_minute, t.rate_per_node_per_minute,
       t.new_nodes_per_address_per_hour, t.vss_auth, t.vss_jwt_public_key,
       coalesce(array_agg(l.label ORDER BY l.label) FILTER (WHERE l.label IS NOT NULL), '{}')::text[] AS labels,
       coalesce(array_agg(l.label_group ORDER BY l.label) FILTER (WHERE l.label IS NOT NULL), '{}')::text[] AS label_groups
FROM tenants AS t
LEFT JOIN tenant_labels AS l ON l.tenant_id = t.id
WHERE t.slug = @slug
GROUP BY t.id;

-- name: TenantList :many
SELECT t.id, t.slug, t.name, t.server_public_key, t.created_at, t.disabled_at,
       (SELECT count(*) FROM tenant_labels AS l WHERE l.tenant_id = t.id) AS extra_labels
FROM tenants AS t
ORDER BY t.id;

-- name: TenantCreate :one
INSERT INTO tenants (slug, name, server_public_key, server_secret_sealed, created_at)
VALUES (@slug, @name, @server_public_key, @server_secret_sealed, @now)
RETURNING id;

-- name: TenantSetDisabled :execrows
-- Disables (a time) or re-enables (NULL) a tenant; the default tenant is
-- served from the environment and cannot be disabled.
UPDATE tenants
SET disabled_at = sqlc.narg(disabled_at)
WHERE slug = @slug AND id <> 1;

-- name: TenantLabelAdd :execrows
-- Adds a label to a tenant's policy; no row when the tenant does not exist.
INSERT INTO tenant_labels (tenant_id, label, label_group, created_at)
SELECT t.id, @label, @label_group, @now
FROM tenants AS t
WHERE t.slug = @slug;

-- name: TenantSetVSSAuth :execrows
-- Sets how a tenant's VSS requests prove their user; no row when the tenant
-- does not exist.
UPDATE tenants
SET vss_auth = @vss_auth, vss_jwt_public_key = sqlc.narg(vss_jwt_public_key)
WHERE slug = @slug;
