package backup

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const nodeHex = "031b84c5567b126440995d3ed5aaba0565d71e1834604819ff9c17f5e9d5dd078f"

func TestParseNodeKey(t *testing.T) {
	t.Parallel()
	k, err := ParseNodeKey(nodeHex)
	require.NoError(t, err)
	require.Equal(t, nodeHex, k.String())

	upper, err := ParseNodeKey(strings.ToUpper(nodeHex))
	require.NoError(t, err)
	require.Equal(t, k, upper, "hex case must not matter")

	for _, bad := range []string{"", nodeHex[:64], nodeHex + "00", "zz" + nodeHex[2:], "04" + nodeHex[2:], " " + nodeHex[1:]} {
		_, err := ParseNodeKey(bad)
		require.Error(t, err, bad)
		require.Equal(t, EINVALID, ErrorCode(err), bad)
	}
}

func TestParseObjectKey(t *testing.T) {
	t.Parallel()
	tenant := &Tenant{ID: DefaultTenant, Labels: NewLabelPolicy(map[string]LabelGroup{"wallet_extra": GroupOther})}
	node, err := ParseNodeKey(nodeHex)
	require.NoError(t, err)
	chanID := strings.Repeat("ab", 32)

	k, err := ParseObjectKey(tenant, node, "regtest", "channel_monitor", strings.ToUpper(chanID))
	require.NoError(t, err)
	require.Len(t, k.ChannelID, 32)

	// A tenant's own label is accepted like a built-in one.
	_, err = ParseObjectKey(tenant, node, "regtest", "wallet_extra", "")
	require.NoError(t, err)

	// Any label but channel_monitor ignores channelId, even a malformed one.
	k, err = ParseObjectKey(tenant, node, "bitcoin", "channel_manager", "../../etc")
	require.NoError(t, err)
	require.Empty(t, k.ChannelID)

	bad := []struct{ network, label, channelID, want string }{
		{"", "ping", "", "missing network"},
		{"mainnet", "ping", "", "unknown network"},
		{"regtest", "", "", "missing label"},
		{"regtest", "../ping", "", "unknown label"},
		{"regtest", "PING", "", "unknown label"},
		{"regtest", "other_extra", "", "unknown label"},
		{"regtest", "channel_monitor", "", "needs a channelId"},
		{"regtest", "channel_monitor", "undefined", "64 hex"},
		{"regtest", "channel_monitor", chanID[:62], "64 hex"},
		{"regtest", "channel_monitor", "../" + chanID[3:], "64 hex"},
		{"regtest", "channel_monitor", strings.Repeat("zz", 32), "64 hex"},
		{"regtest", "channel_monitor", chanID + "00", "64 hex"},
	}
	for _, tc := range bad {
		_, err := ParseObjectKey(tenant, node, tc.network, tc.label, tc.channelID)
		require.Error(t, err, tc)
		require.Equal(t, EINVALID, ErrorCode(err), tc)
		require.Contains(t, ErrorMessage(err), tc.want, tc)
	}
}

func TestErrorMessageHidesInternalErrors(t *testing.T) {
	t.Parallel()
	err := ErrorMessage(errorsNew("pq: password authentication failed for user x"))
	require.Equal(t, "internal error", err)
}

type plainError string

func (e plainError) Error() string { return string(e) }
func errorsNew(s string) error     { return plainError(s) }
