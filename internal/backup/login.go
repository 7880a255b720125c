package backup

import (
	"encoding/json"
	"time"
)

// ChallengeRequest is the auth/challenge request as it came off the wire.
type ChallengeRequest struct {
	Tenant    TenantID
	PublicKey string
	Timestamp json.RawMessage
	Signature string
}

// Session is an issued read session.
type Session struct {
	Token   string
	Expires time.Time
}
