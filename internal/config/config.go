// Package config reads the server's settings from the environment, with the
// original server's variables (HOST, PORT, SECRET_KEY, PUBLIC_KEY) unchanged.
package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"ldkbackup/internal/backup"
	"ldkbackup/internal/vssauth"
)

// Config is every setting of the server.
type Config struct {
	Host string // HOST: address to listen on
	Port int    // PORT

	// SecretKey and PublicKey are the server's long-lived key pair (hex).
	// Wallets pin the public key, so it is never generated at start-up.
	SecretKey string
	PublicKey string

	// KeyEncryptionKey (KEY_ENCRYPTION_KEY, 64 hex) seals the other tenants'
	// server secret keys in the database. Without it only the default tenant
	// is served.
	KeyEncryptionKey string

	DatabaseURL    string // DATABASE_URL
	MigrateOnStart bool   // MIGRATE_ON_START: apply pending migrations when serve starts

	// MonitorURL (MONITOR_URL) is the pg_auto_failover monitor's URI, when
	// the database is a formation: the server then reports, at start-up and
	// every minute, a monitor it cannot reach.
	MonitorURL string

	MaxBodyBytes    int64         // MAX_BODY_BYTES: largest persist body accepted
	RetainVersions  int64         // RETAIN_VERSIONS: versions per object whose bytes are kept
	InFlightBytes   int64         // IN_FLIGHT_BYTES: payload bytes in memory at once, persists and retrieves, all requests together
	InFlightWait    time.Duration // IN_FLIGHT_WAIT: how long a persist or retrieve waits for room before a 503 (0: no wait)
	TimestampWindow time.Duration // TIMESTAMP_WINDOW: how far a signed login timestamp may be from the server clock

	// VSS authorization (internal/vssauth, docs/vss-auth.md).
	// VSSSignatureWindow (VSS_SIGNATURE_WINDOW) is how far a signature
	// header's time may be from the server clock; VSSReplaySlack
	// (VSS_REPLAY_SLACK) how much older than the newest header a key used a
	// header may be (0: no replay guard); VSSAllowNoAuth
	// (VSS_ALLOW_NO_AUTH) serves tenants whose VSS scheme is "none", which
	// lets anyone read and write one shared user: development only.
	VSSSignatureWindow time.Duration
	VSSReplaySlack     time.Duration
	VSSAllowNoAuth     bool
	CacheTTL           time.Duration // CACHE_TTL: how long a replica answers from what it read of a tenant or a session

	// RetrieveChunkBytes (RETRIEVE_CHUNK_BYTES) is how much of a version a
	// retrieve holds at a time: a version of at most this size is read in
	// one query, a larger one a chunk of this size per query. A smaller
	// IN_FLIGHT_BYTES caps it (RetrieveChunk).
	RetrieveChunkBytes int64
	// SendStallTimeout (SEND_STALL_TIMEOUT): a retrieve whose client takes
	// no bytes for this long is dropped.
	SendStallTimeout time.Duration

	// Limits (see README "Limits"): the server-wide defaults; a tenant's
	// own columns override them.
	QuotaBytes                int64         // QUOTA_BYTES: latest versions' bytes per node
	QuotaObjects              int64         // QUOTA_OBJECTS: objects per node
	QuotaUploads              int64         // QUOTA_UPLOADS: uploads per node remembered for the replay rule
	UploadHistoryDays         int64         // UPLOAD_HISTORY_DAYS: how long an upload is remembered for the replay rule
	PaceMaxWait               time.Duration // PACE_MAX_WAIT: how long a proven persist over its node's allowance may wait for its turn
	UsageCheckInterval        time.Duration // USAGE_CHECK_INTERVAL: how often housekeeping compares usage with what is stored; 0: never
	UsageRepair               bool          // USAGE_REPAIR: housekeeping repairs the differences it finds, not only reports them
	RatePerAddressPerMinute   int64         // RATE_PER_ADDRESS_PER_MINUTE: logins and failed proofs per client address
	RatePerNodePerMinute      int64         // RATE_PER_NODE_PER_MINUTE: proven persists and reads per node
	NewNodesPerAddressPerHour int64         // NEW_NODES_PER_ADDRESS_PER_HOUR: new node keys per client address
	RateLimits                bool          // RATE_LIMITS: on, or off for load tests (quotas and the body limit stay)
	TrustedProxies            string        // TRUSTED_PROXIES: comma-separated CIDRs whose X-Forwarded-For is believed

	LogFormat string // LOG_FORMAT: text or json
	LogLevel  string // LOG_LEVEL: debug, info, warn, error

	ReadHeaderTimeout time.Duration // READ_HEADER_TIMEOUT
	ReadTimeout       time.Duration // READ_TIMEOUT: a whole request, body included
	WriteTimeout      time.Duration // WRITE_TIMEOUT
	IdleTimeout       time.Duration // IDLE_TIMEOUT
	ShutdownTimeout   time.Duration // SHUTDOWN_TIMEOUT: how long in-flight requests may finish on SIGTERM

	HousekeepingInterval time.Duration // HOUSEKEEPING_INTERVAL: how often expired state is swept

	// AdminAddr (ADMIN_ADDR) serves /metrics, never on the public port; ""
	// or "off" turns it off. AdminPprof (ADMIN_PPROF) adds /debug/pprof.
	AdminAddr  string
	AdminPprof bool
}

// Default returns the settings used where the environment says nothing.
func Default() Config {
	return Config{
		Host:           "0.0.0.0",
		Port:           3003,
		MigrateOnStart: true,
		MaxBodyBytes:   32 << 20,
		RetainVersions: 5,
		// Each body is held about twice (read buffer, query parameters):
		// 256 MiB of bodies keeps the process well under 1 GiB.
		InFlightBytes: 256 << 20,
		InFlightWait:  10 * time.Second,
		QuotaBytes:    100 << 20,
		QuotaObjects:  5000,
		// A wallet persists a few hundred times a day; a million uploads in
		// a year is a node persisting in a loop (about 88 MB of history).
		QuotaUploads:      1_000_000,
		UploadHistoryDays: 365,
		// The Android client turns a refusal into a lost backup: a proven
		// persist waits for its turn rather than being refused, up to this.
		PaceMaxWait:        30 * time.Second,
		UsageCheckInterval: 24 * time.Hour,
		// One wallet's restore logs in once; 300 logins a minute from one
		// address still serves a carrier-grade NAT full of wallets.
		RatePerAddressPerMinute: 300,
		// A busy node persists a monitor per payment and reads ~20 objects
		// in a restore: 10 requests a second is far above that.
		RatePerNodePerMinute:      600,
		NewNodesPerAddressPerHour: 100,
		RateLimits:                true,
		TimestampWindow:           12 * time.Hour,
		// vss-client signs a fresh header per request: the window absorbs
		// a phone's clock error (docs/vss-auth.md); the reference's 24 h
		// would let a captured header be replayed for a day.
		VSSSignatureWindow:   vssauth.DefaultSignatureWindow,
		VSSReplaySlack:       vssauth.DefaultReplaySlack,
		CacheTTL:             time.Second,
		LogFormat:            "json",
		LogLevel:             "info",
		ReadHeaderTimeout:    10 * time.Second,
		ReadTimeout:          5 * time.Minute,
		WriteTimeout:         5 * time.Minute,
		IdleTimeout:          2 * time.Minute,
		ShutdownTimeout:      30 * time.Second,
		HousekeepingInterval: time.Minute,
		AdminAddr:            "127.0.0.1:9090",

		// 30 MiB in 120 queries of 0.4-2 ms each, versions up to 256 KiB (most
		// channel monitors) in one query, and 256 KiB held by a stalled reader.
		RetrieveChunkBytes: 256 << 10,
		// A mobile link that takes nothing for 30 s is gone.
		SendStallTimeout: 30 * time.Second,
	}
}

// FromEnv overlays the environment (read through getenv) on c.
func (c Config) FromEnv(getenv func(string) string) (Config, error) {
	var errs []error
	str := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	integer := func(name string, dst *int64) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a whole number", name, v))
				return
			}
			*dst = n
		}
	}
	duration := func(name string, dst *time.Duration) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a duration like 30s or 12h", name, v))
				return
			}
			*dst = d
		}
	}
	boolean := func(name string, dst *bool) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not true or false", name, v))
				return
			}
			*dst = b
		}
	}

	str("HOST", &c.Host)
	port := int64(c.Port)
	integer("PORT", &port)
	c.Port = int(port)
	str("SECRET_KEY", &c.SecretKey)
	str("PUBLIC_KEY", &c.PublicKey)
	str("KEY_ENCRYPTION_KEY", &c.KeyEncryptionKey)
	str("DATABASE_URL", &c.DatabaseURL)
	str("MONITOR_URL", &c.MonitorURL)
	boolean("MIGRATE_ON_START", &c.MigrateOnStart)
	integer("MAX_BODY_BYTES", &c.MaxBodyBytes)
	integer("RETAIN_VERSIONS", &c.RetainVersions)
	integer("IN_FLIGHT_BYTES", &c.InFlightBytes)
	duration("IN_FLIGHT_WAIT", &c.InFlightWait)
	integer("RETRIEVE_CHUNK_BYTES", &c.RetrieveChunkBytes)
	duration("SEND_STALL_TIMEOUT", &c.SendStallTimeout)
	integer("QUOTA_BYTES", &c.QuotaBytes)
	integer("QUOTA_OBJECTS", &c.QuotaObjects)
	integer("QUOTA_UPLOADS", &c.QuotaUploads)
	integer("UPLOAD_HISTORY_DAYS", &c.UploadHistoryDays)
	duration("PACE_MAX_WAIT", &c.PaceMaxWait)
	duration("USAGE_CHECK_INTERVAL", &c.UsageCheckInterval)
	boolean("USAGE_REPAIR", &c.UsageRepair)
	integer("RATE_PER_ADDRESS_PER_MINUTE", &c.RatePerAddressPerMinute)
	integer("RATE_PER_NODE_PER_MINUTE", &c.RatePerNodePerMinute)
	integer("NEW_NODES_PER_ADDRESS_PER_HOUR", &c.NewNodesPerAddressPerHour)
	switch v := strings.ToLower(strings.TrimSpace(getenv("RATE_LIMITS"))); v {
	case "":
	case "on", "true", "1":
		c.RateLimits = true
	case "off", "false", "0":
		c.RateLimits = false
	default:
		errs = append(errs, fmt.Errorf("RATE_LIMITS: %q is not on or off", v))
	}
	str("TRUSTED_PROXIES", &c.TrustedProxies)
	duration("TIMESTAMP_WINDOW", &c.TimestampWindow)
	duration("VSS_SIGNATURE_WINDOW", &c.VSSSignatureWindow)
	duration("VSS_REPLAY_SLACK", &c.VSSReplaySlack)
	boolean("VSS_ALLOW_NO_AUTH", &c.VSSAllowNoAuth)
	duration("CACHE_TTL", &c.CacheTTL)
	str("LOG_FORMAT", &c.LogFormat)
	str("LOG_LEVEL", &c.LogLevel)
	duration("READ_HEADER_TIMEOUT", &c.ReadHeaderTimeout)
	duration("READ_TIMEOUT", &c.ReadTimeout)
	duration("WRITE_TIMEOUT", &c.WriteTimeout)
	duration("IDLE_TIMEOUT", &c.IdleTimeout)
	duration("SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	duration("HOUSEKEEPING_INTERVAL", &c.HousekeepingInterval)
	str("ADMIN_ADDR", &c.AdminAddr)
	if c.AdminAddr == "off" {
		c.AdminAddr = ""
	}
	boolean("ADMIN_PPROF", &c.AdminPprof)
	return c, errors.Join(errs...)
}

// Validate checks the settings serve needs, each failure in one line.
func (c Config) Validate() error {
	var errs []error
	if _, err := c.ServerKey(); err != nil {
		errs = append(errs, err)
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is not set"))
	}
	if _, err := c.KEK(); err != nil {
		errs = append(errs, err)
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("PORT %d is not a TCP port", c.Port))
	}
	if c.MaxBodyBytes < 1 {
		errs = append(errs, errors.New("MAX_BODY_BYTES must be positive"))
	}
	if c.InFlightBytes < c.MaxBodyBytes {
		errs = append(errs, errors.New("IN_FLIGHT_BYTES must be at least MAX_BODY_BYTES"))
	}
	if c.CacheTTL < 0 || c.CacheTTL > time.Minute {
		errs = append(errs, errors.New("CACHE_TTL must be between 0 and 1m"))
	}
	if c.InFlightWait < 0 {
		errs = append(errs, errors.New("IN_FLIGHT_WAIT must not be negative"))
	}
	if c.RetrieveChunkBytes < 4<<10 || c.RetrieveChunkBytes > 16<<20 {
		errs = append(errs, errors.New("RETRIEVE_CHUNK_BYTES must be between 4096 and 16777216"))
	}
	if c.SendStallTimeout <= 0 {
		errs = append(errs, errors.New("SEND_STALL_TIMEOUT must be positive"))
	}
	// A retrieve pins the version it streams for as long as its reply may
	// take: without a write timeout, for good.
	if c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("WRITE_TIMEOUT must be positive"))
	}
	if c.RetainVersions < 1 || c.RetainVersions > 1_000_000 {
		errs = append(errs, errors.New("RETAIN_VERSIONS must be between 1 and 1000000"))
	}
	for name, v := range map[string]int64{
		"QUOTA_BYTES": c.QuotaBytes, "QUOTA_OBJECTS": c.QuotaObjects, "QUOTA_UPLOADS": c.QuotaUploads, "RATE_PER_ADDRESS_PER_MINUTE": c.RatePerAddressPerMinute,
		"RATE_PER_NODE_PER_MINUTE": c.RatePerNodePerMinute, "NEW_NODES_PER_ADDRESS_PER_HOUR": c.NewNodesPerAddressPerHour,
	} {
		if v < 1 || (v > math.MaxInt32 && name != "QUOTA_BYTES" && name != "QUOTA_UPLOADS") {
			errs = append(errs, fmt.Errorf("%s must be a positive number (RATE_LIMITS=off turns rate limits off)", name))
		}
	}
	if _, err := c.TrustedProxyList(); err != nil {
		errs = append(errs, err)
	}
	if c.UploadHistoryDays < 1 || c.UploadHistoryDays > 36500 {
		errs = append(errs, errors.New("UPLOAD_HISTORY_DAYS must be between 1 and 36500"))
	}
	if c.PaceMaxWait < 0 || c.PaceMaxWait > 5*time.Minute {
		errs = append(errs, errors.New("PACE_MAX_WAIT must be between 0 and 5m"))
	}
	if c.UsageCheckInterval < 0 {
		errs = append(errs, errors.New("USAGE_CHECK_INTERVAL must not be negative (0 turns the check off)"))
	}
	if c.HousekeepingInterval <= 0 {
		errs = append(errs, errors.New("HOUSEKEEPING_INTERVAL must be positive"))
	}
	if c.TimestampWindow <= 0 {
		errs = append(errs, errors.New("TIMESTAMP_WINDOW must be positive"))
	}
	if c.VSSSignatureWindow <= 0 || c.VSSSignatureWindow > 24*time.Hour {
		errs = append(errs, errors.New("VSS_SIGNATURE_WINDOW must be between 1s and 24h"))
	}
	if c.VSSReplaySlack < 0 || c.VSSReplaySlack > c.VSSSignatureWindow {
		errs = append(errs, errors.New("VSS_REPLAY_SLACK must be between 0 (no replay guard) and VSS_SIGNATURE_WINDOW"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT %q: want text or json", c.LogFormat))
	}
	return errors.Join(errs...)
}

// Addr is the listen address.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// ServerKey parses SECRET_KEY and checks that PUBLIC_KEY belongs to it:
// serving with a key the apps did not pin would fail every persist.
func (c Config) ServerKey() (*btcec.PrivateKey, error) {
	if c.SecretKey == "" || c.PublicKey == "" {
		return nil, errors.New("SECRET_KEY and PUBLIC_KEY must both be set (run `server keygen` for a new pair)")
	}
	raw, err := hex.DecodeString(c.SecretKey)
	if err != nil || len(raw) != 32 {
		return nil, errors.New("SECRET_KEY must be 64 hex characters")
	}
	key, pub := btcec.PrivKeyFromBytes(raw)
	if key.Key.IsZero() {
		return nil, errors.New("SECRET_KEY is not a valid secp256k1 key")
	}
	if !strings.EqualFold(hex.EncodeToString(pub.SerializeCompressed()), c.PublicKey) {
		return nil, errors.New("PUBLIC_KEY does not belong to SECRET_KEY")
	}
	return key, nil
}

// RetrieveChunk is a retrieve's buffer: RETRIEVE_CHUNK_BYTES, or the whole
// IN_FLIGHT_BYTES budget when that is smaller, so that a retrieve always fits
// the budget it is taken from.
func (c Config) RetrieveChunk() int64 { return min(c.RetrieveChunkBytes, c.InFlightBytes) }

// Limits are the server-wide limits.
func (c Config) Limits() backup.Limits {
	return backup.Limits{
		QuotaBytes:                c.QuotaBytes,
		QuotaObjects:              c.QuotaObjects,
		QuotaUploads:              c.QuotaUploads,
		PaceMaxWait:               c.PaceMaxWait,
		AddressPerMinute:          c.RatePerAddressPerMinute,
		NodePerMinute:             c.RatePerNodePerMinute,
		NewNodesPerAddressPerHour: c.NewNodesPerAddressPerHour,
	}
}

// TrustedProxyList parses TRUSTED_PROXIES: CIDRs or single addresses.
func (c Config) TrustedProxyList() ([]string, error) {
	var out []string
	for _, p := range strings.Split(c.TrustedProxies, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return nil, fmt.Errorf("TRUSTED_PROXIES: %q is not an address or CIDR", p)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// KEK parses KEY_ENCRYPTION_KEY; nil when it is not set.
func (c Config) KEK() ([]byte, error) {
	if c.KeyEncryptionKey == "" {
		return nil, nil
	}
	kek, err := hex.DecodeString(c.KeyEncryptionKey)
	if err != nil || len(kek) != 32 {
		return nil, errors.New("KEY_ENCRYPTION_KEY must be 64 hex characters (32 random bytes)")
	}
	return kek, nil
}

// GenerateKeyPair returns a new server key pair as hex.
func GenerateKeyPair() (secret, public string, err error) {
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return "", "", err
	}
	return hex.EncodeToString(key.Serialize()), hex.EncodeToString(key.PubKey().SerializeCompressed()), nil
}
