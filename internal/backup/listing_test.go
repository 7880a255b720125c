package backup

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestListingFileGroups(t *testing.T) {
	t.Parallel()
	mon := bytes.Repeat([]byte{0xcd}, 32)
	keys := []StoredKey{
		{Label: "bitkit_settings"},
		{Label: "channel_manager"},
		{Label: "channel_monitor", ChannelID: mon},
		{Label: "ping"},
		{Label: "zz_extra"},
	}
	policy := NewLabelPolicy(map[string]LabelGroup{"zz_extra": GroupOther})
	monName := hex.EncodeToString(mon) + ".bin"

	ldk := newListing(policy, FileGroupLDK, keys)
	require.Equal(t, []string{"channel_manager.bin", "ping.bin"}, ldk.List)
	require.Equal(t, []string{monName}, ldk.ChannelMonitors)

	bitkit := newListing(policy, FileGroupBitkit, keys)
	require.Equal(t, []string{"bitkit_settings.bin"}, bitkit.List)
	require.NotNil(t, bitkit.ChannelMonitors)
	require.Empty(t, bitkit.ChannelMonitors)

	all := newListing(policy, FileGroupAll, keys)
	require.Equal(t, []string{"bitkit_settings.bin", "channel_manager.bin", "ping.bin", "zz_extra.bin"}, all.List, "other-group labels list only under all")
	require.Equal(t, []string{monName}, all.ChannelMonitors)

	empty := newListing(policy, FileGroupLDK, nil)
	require.NotNil(t, empty.List)
	require.NotNil(t, empty.ChannelMonitors)
}

func TestParseFileGroup(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]FileGroup{"": FileGroupLDK, "ldk": FileGroupLDK, "bitkit": FileGroupBitkit, "all": FileGroupAll} {
		got, err := ParseFileGroup(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := ParseFileGroup("LDK")
	require.Equal(t, EINVALID, ErrorCode(err))
}

func TestValidateNewLabel(t *testing.T) {
	t.Parallel()
	require.NoError(t, ValidateNewLabel("wallet_backup_v2"))
	for _, bad := range []string{"", "Ping", "a-b", "../x", "ping", "channel_monitor", "bitkit_wallet", string(make([]byte, 65))} {
		require.Equal(t, EINVALID, ErrorCode(ValidateNewLabel(bad)), bad)
	}
	for _, g := range []string{"ldk", "bitkit", "other"} {
		_, err := ParseLabelGroup(g)
		require.NoError(t, err)
	}
	_, err := ParseLabelGroup("LDK")
	require.Error(t, err)
}
