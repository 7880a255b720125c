package vss

import "time"

// UserReport is what an operator sees of a user (server vss show).
type UserReport struct {
	// Exists is false for a user that never wrote.
	Exists    bool
	Bytes     int64
	Objects   int64
	FirstSeen time.Time
	LastWrite *time.Time
	// OwnQuotaBytes and OwnQuotaObjects are the operator's quotas for the
	// user, nil where the tenant's or the server's apply.
	OwnQuotaBytes   *int64
	OwnQuotaObjects *int64
	Stores          []StoreUsage
	// Keys are the first keys of the user (of one store when asked), by
	// store and newest created first.
	Keys     []StoredKey
	Refusals []Refusal
}

// StoreUsage is one store of a user.
type StoreUsage struct {
	StoreID   string
	Keys      int64
	Bytes     int64
	LastWrite time.Time
}

// StoredKey is one key as an operator sees it.
type StoredKey struct {
	StoreID   string
	Key       string
	Version   int64
	Size      int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Refusal counts the refusals of one kind of a user's requests.
type Refusal struct {
	Kind   string
	Count  int64
	LastAt time.Time
}

// Deletion is what deleting a user's data removed.
type Deletion struct {
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
}
