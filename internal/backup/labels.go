package backup

// LabelChannelMonitor is the one label whose objects are keyed by channel id.
const LabelChannelMonitor = "channel_monitor"

// LabelGroup is the list a label belongs to: the fileGroup parameter of list
// selects groups.
type LabelGroup string

const (
	GroupLDK    LabelGroup = "ldk"
	GroupBitkit LabelGroup = "bitkit"
)

// LabelPolicy says which labels a tenant accepts and the group each lists
// under.
type LabelPolicy struct {
	groups map[string]LabelGroup
}

// DefaultLabelPolicy is the label set of the protocol (PROTOCOL.md section 2).
func DefaultLabelPolicy() LabelPolicy {
	p := LabelPolicy{groups: map[string]LabelGroup{}}
	for _, l := range []string{
		"ping", "channel_manager", LabelChannelMonitor, "peers", "unconfirmed_transactions",
		"broadcasted_transactions", "payment_ids", "spendable_outputs", "payments_claimed",
		"payments_sent", "bolt11_invoices", "channel_opened_with_custom_keys_manager",
		"confirmed_watch_outputs", "addresses",
	} {
		p.groups[l] = GroupLDK
	}
	for _, l := range []string{
		"bitkit_settings", "bitkit_wallet", "bitkit_widgets", "bitkit_metadata",
		"bitkit_blocktank_orders", "bitkit_slashtags_contacts", "bitkit_lightning_activity",
	} {
		p.groups[l] = GroupBitkit
	}
	return p
}

// Group returns the group of label and whether the policy accepts it.
func (p LabelPolicy) Group(label string) (LabelGroup, bool) {
	g, ok := p.groups[label]
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
