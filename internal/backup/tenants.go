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
	VSSAuth      VSSAuth
}

// VSSAuth is how a tenant's VSS requests prove their user
// (internal/vssauth has the schemes).
type VSSAuth struct {
	Scheme VSSAuthScheme
	// JWTPublicKey is the PEM public key of the tenant's token issuer, for
	// the jwt scheme only.
	JWTPublicKey string
}

// VSSAuthScheme names a VSS authorization scheme.
type VSSAuthScheme string

// The schemes a tenant may choose; signature is every tenant's until the
// operator chooses another.
const (
	VSSAuthSignature VSSAuthScheme = "signature" // ldk-node's default: a signature by the user's key
	VSSAuthJWT       VSSAuthScheme = "jwt"       // RS256 bearer tokens of the tenant's issuer
	VSSAuthNone      VSSAuthScheme = "none"      // development only: every client is one user
)

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
