package postgres

import (
	"context"
	"time"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/dbsqlc"
)

// TenantBySlug returns a tenant with its extra labels.
func (s *Store) TenantBySlug(ctx context.Context, slug string) (backup.TenantRecord, error) {
	row, err := s.q.TenantGetBySlug(ctx, slug)
	if err != nil {
		return backup.TenantRecord{}, interpretError(err)
	}
	labels := make(map[string]backup.LabelGroup, len(row.Labels))
	for i, l := range row.Labels {
		labels[l] = backup.LabelGroup(row.LabelGroups[i])
	}
	return backup.TenantRecord{
		ID:           backup.TenantID(row.ID),
		Slug:         row.Slug,
		Name:         row.Name,
		PublicKey:    row.ServerPublicKey,
		SecretSealed: row.ServerSecretSealed,
		CreatedAt:    row.CreatedAt,
		DisabledAt:   row.DisabledAt,
		Labels:       labels,
		Limits: backup.LimitOverrides{
			QuotaBytes:                row.QuotaBytes,
			QuotaObjects:              row.QuotaObjects,
			RatePerAddressPerMinute:   row.RatePerAddressPerMinute,
			RatePerNodePerMinute:      row.RatePerNodePerMinute,
			NewNodesPerAddressPerHour: row.NewNodesPerAddressPerHour,
		},
		VSSAuth: backup.VSSAuth{Scheme: backup.VSSAuthScheme(row.VssAuth), JWTPublicKey: deref(row.VssJwtPublicKey)},
	}, nil
}

// TenantList returns every tenant, oldest first.
func (s *Store) TenantList(ctx context.Context) ([]backup.TenantSummary, error) {
	rows, err := s.q.TenantList(ctx)
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]backup.TenantSummary, len(rows))
	for i, r := range rows {
		out[i] = backup.TenantSummary{
			ID:          backup.TenantID(r.ID),
			Slug:        r.Slug,
			Name:        r.Name,
			PublicKey:   r.ServerPublicKey,
			CreatedAt:   r.CreatedAt,
			DisabledAt:  r.DisabledAt,
			ExtraLabels: r.ExtraLabels,
		}
	}
	return out, nil
}

// TenantCreate stores a new tenant.
func (s *Store) TenantCreate(ctx context.Context, r backup.TenantRecord) (backup.TenantID, error) {
	id, err := s.q.TenantCreate(ctx, dbsqlc.TenantCreateParams{
		Slug:               r.Slug,
		Name:               r.Name,
		ServerPublicKey:    r.PublicKey,
		ServerSecretSealed: r.SecretSealed,
		Now:                r.CreatedAt,
	})
	return backup.TenantID(id), interpretError(err)
}

// TenantSetDisabled sets or clears a tenant's disabled time.
func (s *Store) TenantSetDisabled(ctx context.Context, slug string, at *time.Time) (bool, error) {
	n, err := s.q.TenantSetDisabled(ctx, dbsqlc.TenantSetDisabledParams{Slug: slug, DisabledAt: at})
	return n == 1, interpretError(err)
}

// TenantLabelAdd adds a label to a tenant's policy.
func (s *Store) TenantLabelAdd(ctx context.Context, slug, label string, group backup.LabelGroup, now time.Time) (bool, error) {
	n, err := s.q.TenantLabelAdd(ctx, dbsqlc.TenantLabelAddParams{Slug: slug, Label: label, LabelGroup: string(group), Now: now})
	return n == 1, interpretError(err)
}

// TenantSetVSSAuth sets how a tenant's VSS requests prove their user.
func (s *Store) TenantSetVSSAuth(ctx context.Context, slug string, a backup.VSSAuth) (bool, error) {
	var key *string
	if a.JWTPublicKey != "" {
		key = &a.JWTPublicKey
	}
	n, err := s.q.TenantSetVSSAuth(ctx, dbsqlc.TenantSetVSSAuthParams{Slug: slug, VssAuth: string(a.Scheme), VssJwtPublicKey: key})
	return n == 1, interpretError(err)
}
