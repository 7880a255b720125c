package backup

import (
	"testing"
)

// FuzzParseObjectKey: no input panics, and what is accepted is well formed.
func FuzzParseObjectKey(f *testing.F) {
	f.Add("regtest", "channel_monitor", "abababababababababababababababababababababababababababababababab")
	f.Add("bitcoin", "ping", "")
	f.Add("signet", "channel_monitor", "../../etc/passwd")
	f.Add("testnet", "pïng", "undefined")
	f.Add("", "", "")
	tenant := &Tenant{ID: DefaultTenant, Labels: NewLabelPolicy(map[string]LabelGroup{"extra": GroupOther})}
	node, _ := ParseNodeKey("031b84c5567b126440995d3ed5aaba0565d71e1834604819ff9c17f5e9d5dd078f")
	f.Fuzz(func(t *testing.T, network, label, channelID string) {
		k, err := ParseObjectKey(tenant, node, network, label, channelID)
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("error with code %q: %v", ErrorCode(err), err)
			}
			return
		}
		if _, ok := tenant.Labels.Group(k.Label); !ok {
			t.Fatalf("accepted label %q outside the policy", k.Label)
		}
		if (k.Label == LabelChannelMonitor) != (len(k.ChannelID) == 32) {
			t.Fatalf("label %q with a %d-byte channel id", k.Label, len(k.ChannelID))
		}
		if !labelPattern.MatchString(k.Label) {
			t.Fatalf("accepted label %q", k.Label)
		}
	})
}

// FuzzParseNodeKey: accepted keys round-trip to lowercase hex.
func FuzzParseNodeKey(f *testing.F) {
	f.Add("031b84c5567b126440995d3ed5aaba0565d71e1834604819ff9c17f5e9d5dd078f")
	f.Add("041b84c5567b126440995d3ed5aaba0565d71e1834604819ff9c17f5e9d5dd078f")
	f.Add("03")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseNodeKey(s)
		if err != nil {
			return
		}
		if len(s) != 66 || (k[0] != 2 && k[0] != 3) {
			t.Fatalf("accepted %q", s)
		}
		again, err := ParseNodeKey(k.String())
		if err != nil || again != k {
			t.Fatalf("%q does not round-trip", s)
		}
	})
}
