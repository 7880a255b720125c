package backup

// Events counted per day and tenant for reports (activity_daily.kind, read
// by reporting.daily): what the stored data does not show.
const (
	EventPersist            = "persist" // a stored version (bytes: its size)
	EventPaced              = "paced"   // a persist that waited for its turn
	EventLogin              = "login"
	EventRetrieve           = "retrieve"
	EventSignatureFailure   = "signature_failure"
	EventRefusedRateAddress = "refused_rate_address"
	EventRefusedRateNode    = "refused_rate_node"
	EventRefusedNewNodes    = "refused_new_nodes"
	EventRefusedQuota       = "refused_quota"
	EventRefusedBodySize    = "refused_body_size"
	EventRefusedReplay      = "refused_replay"

	// VSS operations that succeeded (reporting.vss_daily); its refusals and
	// failed authorizations count under the kinds above, shared with v1.
	EventVSSPut    = "vss_put"    // a putObjects applied (bytes: its request body)
	EventVSSGet    = "vss_get"    // a getObject answered (bytes: its reply)
	EventVSSDelete = "vss_delete" // a deleteObject answered
	EventVSSList   = "vss_list"   // a listKeyVersions page answered
)

// EventKinds lists every kind, for counters that start each at zero.
func EventKinds() []string {
	return []string{
		EventPersist, EventPaced, EventLogin, EventRetrieve, EventSignatureFailure,
		EventRefusedRateAddress, EventRefusedRateNode, EventRefusedNewNodes,
		EventRefusedQuota, EventRefusedBodySize, EventRefusedReplay,
		EventVSSPut, EventVSSGet, EventVSSDelete, EventVSSList,
	}
}
