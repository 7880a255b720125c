package backup

import "time"

// LimitOverrides are a tenant's own limits; nil means the server-wide
// default (Limits are the ones in force).
type LimitOverrides struct {
	QuotaBytes                *int64
	QuotaObjects              *int32
	RatePerAddressPerMinute   *int32
	RatePerNodePerMinute      *int32
	NewNodesPerAddressPerHour *int32
}

// TenantRecord is a tenant as stored.
type TenantRecord struct {
	ID           TenantID
	Slug         string
	Name         string
	PublicKey    []byte // nil for the default tenant: its key is in the environment
	SecretSealed []byte
	CreatedAt    time.Time
	DisabledAt   *time.Time
	Labels       map[string]LabelGroup // beyond the built-in set
	Limits       LimitOverrides
}

// TenantSummary is a tenant in a listing.
type TenantSummary struct {
	ID          TenantID
	Slug        string
	Name        string
	PublicKey   []byte
	CreatedAt   time.Time
	DisabledAt  *time.Time
	ExtraLabels int64
}
