package backup

import "regexp"

// LabelChannelMonitor is the one label whose objects are keyed by channel id.
const LabelChannelMonitor = "channel_monitor"

// LabelGroup is the list a label belongs to: the fileGroup parameter of list
// selects groups.
type LabelGroup string

const (
	GroupLDK    LabelGroup = "ldk"
	GroupBitkit LabelGroup = "bitkit"
	// GroupOther labels are listed only with fileGroup=all.
	GroupOther LabelGroup = "other"
)

// ParseLabelGroup validates a group an operator gives a new label.
func ParseLabelGroup(s string) (LabelGroup, error) {
	switch g := LabelGroup(s); g {
	case GroupLDK, GroupBitkit, GroupOther:
		return g, nil
	}
	return "", Errorf(EINVALID, "unknown label group %q (want ldk, bitkit or other)", truncate(s))
}

// labelPattern is what a label may look like; the objects table checks it too.
var labelPattern = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// ValidateNewLabel checks a label an operator adds to a tenant's policy.
func ValidateNewLabel(label string) error {
	if !labelPattern.MatchString(label) {
		return Errorf(EINVALID, "label %q must be 1 to 64 of a-z, 0-9 and _", truncate(label))
	}
	if _, ok := builtinGroup(label); ok {
		return Errorf(EINVALID, "label %q is built in", label)
	}
	return nil
}

// builtinGroup is the protocol's label set (PROTOCOL.md section 2), which
// every tenant accepts.
func builtinGroup(label string) (LabelGroup, bool) {
	switch label {
	case "ping", "channel_manager", LabelChannelMonitor, "peers", "unconfirmed_transactions",
		"broadcasted_transactions", "payment_ids", "spendable_outputs", "payments_claimed",
		"payments_sent", "bolt11_invoices", "channel_opened_with_custom_keys_manager",
		"confirmed_watch_outputs", "addresses":
		return GroupLDK, true
	case "bitkit_settings", "bitkit_wallet", "bitkit_widgets", "bitkit_metadata",
		"bitkit_blocktank_orders", "bitkit_slashtags_contacts", "bitkit_lightning_activity":
		return GroupBitkit, true
	}
	return "", false
}

// LabelPolicy says which labels a tenant accepts and the group each lists
// under: the built-in set plus the tenant's own.
type LabelPolicy struct {
	extra map[string]LabelGroup
}

// NewLabelPolicy returns the built-in set plus extra.
func NewLabelPolicy(extra map[string]LabelGroup) LabelPolicy {
	return LabelPolicy{extra: extra}
}

// DefaultLabelPolicy is the built-in set alone.
func DefaultLabelPolicy() LabelPolicy { return LabelPolicy{} }

// Group returns the group of label and whether the policy accepts it.
func (p LabelPolicy) Group(label string) (LabelGroup, bool) {
	if g, ok := builtinGroup(label); ok {
		return g, true
	}
	g, ok := p.extra[label]
	return g, ok
}

// FileGroup is the list request's fileGroup parameter.
type FileGroup string

const (
	FileGroupLDK    FileGroup = "ldk"
	FileGroupBitkit FileGroup = "bitkit"
	FileGroupAll    FileGroup = "all"
)

// ParseFileGroup validates fileGroup; absent means ldk, as older apps send none.
func ParseFileGroup(s string) (FileGroup, error) {
	switch FileGroup(s) {
	case "", FileGroupLDK:
		return FileGroupLDK, nil
	case FileGroupBitkit, FileGroupAll:
		return FileGroup(s), nil
	}
	return "", Errorf(EINVALID, "unknown fileGroup %q (want ldk, bitkit or all)", truncate(s))
}
