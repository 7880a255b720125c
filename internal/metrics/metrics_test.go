package metrics

import "testing"

func TestSplitRoute(t *testing.T) {
	for _, c := range []struct{ pattern, protocol, route string }{
		{"/v1/persist", "v1", "/persist"},
		{"/t/:tenant/v1/persist", "v1", "/persist"},
		{"/t/:tenant/v1/auth/challenge", "v1", "/auth/challenge"},
		{"/vss/putObjects", "vss", "/putObjects"},
		{"/t/:tenant/vss/getObject", "vss", "/getObject"},
		{"/healthz", None, "/healthz"},
		{"", None, "unmatched"},
	} {
		protocol, route := SplitRoute(c.pattern)
		if protocol != c.protocol || route != c.route {
			t.Errorf("SplitRoute(%q) = %q, %q; want %q, %q", c.pattern, protocol, route, c.protocol, c.route)
		}
	}
}
