package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// integrity is what the database itself says about the stored objects,
// checked with SQL after a drill, independently of the server.
type integrity struct {
	Objects      int64 `json:"objects"`
	Versions     int64 `json:"versions"`
	HeldVersions int64 `json:"held_versions"` // versions whose bytes are kept
	HeldBytes    int64 `json:"held_bytes"`
	// CorruptPayloads: kept bytes whose length or SHA-256 differs from the
	// size and hash recorded with them (a partial or torn write).
	CorruptPayloads int64 `json:"corrupt_payloads"`
	// BadLatest: objects whose latest version is missing, has no bytes, or
	// disagrees with the object row's size or hash.
	BadLatest int64 `json:"bad_latest"`
	// VersionGaps: objects whose kept versions are not one unbroken run
	// ending at latest_version (retention deletes the oldest).
	VersionGaps int64 `json:"version_gaps"`
	// UsageDrift: nodes whose node_usage differs from the sum and count of
	// their objects (the quota's books).
	UsageDrift int64 `json:"usage_drift"`
}

const integritySQL = `
SELECT
  (SELECT count(*) FROM objects),
  (SELECT count(*) FROM object_versions),
  (SELECT count(*) FROM object_versions WHERE payload IS NOT NULL),
  (SELECT coalesce(sum(size), 0)::bigint FROM object_versions WHERE payload IS NOT NULL),
  (SELECT count(*) FROM object_versions
     WHERE payload IS NOT NULL AND (length(payload) <> size OR sha256(payload) <> sha256)),
  (SELECT count(*) FROM objects o
     LEFT JOIN object_versions v ON v.object_id = o.id AND v.version = o.latest_version
     WHERE v.payload IS NULL OR v.size <> o.size OR v.sha256 <> o.sha256),
  (SELECT count(*) FROM (
     SELECT o.id FROM objects o JOIN object_versions v ON v.object_id = o.id
     GROUP BY o.id, o.latest_version
     HAVING count(*) <> max(v.version) - min(v.version) + 1 OR max(v.version) <> o.latest_version) AS gaps),
  (SELECT count(*) FROM node_usage u
     FULL JOIN (SELECT tenant_id, node_key, sum(size) AS bytes, count(*) AS n
                FROM objects GROUP BY tenant_id, node_key) AS o USING (tenant_id, node_key)
     WHERE coalesce(u.bytes, 0) <> coalesce(o.bytes, 0) OR coalesce(u.objects, 0) <> coalesce(o.n, 0))`

// checkIntegrity runs integritySQL on the drill's database.
func checkIntegrity(ctx context.Context, dbURL string) (integrity, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return integrity{}, err
	}
	defer conn.Close(ctx)
	var i integrity
	err = conn.QueryRow(ctx, integritySQL).Scan(&i.Objects, &i.Versions, &i.HeldVersions, &i.HeldBytes,
		&i.CorruptPayloads, &i.BadLatest, &i.VersionGaps, &i.UsageDrift)
	if err != nil {
		return integrity{}, fmt.Errorf("integrity check: %w", err)
	}
	return i, nil
}

// check adds a failure to v for each broken invariant.
func (i integrity) check(v *verdict) {
	v.require(i.CorruptPayloads == 0, "%d stored payloads do not match their recorded size or SHA-256", i.CorruptPayloads)
	v.require(i.BadLatest == 0, "%d objects have a missing, empty or mismatched latest version", i.BadLatest)
	v.require(i.VersionGaps == 0, "%d objects have gaps in their version numbers", i.VersionGaps)
	v.require(i.UsageDrift == 0, "%d nodes have node_usage out of step with their objects", i.UsageDrift)
}
