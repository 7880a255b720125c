package main

import (
	"io"
	"testing"
)

// make bench runs every scenario: the default list names each one, and
// nothing else.
func TestDefaultScenariosAreEveryScenario(t *testing.T) {
	o, err := parseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	all := allScenarios(o)
	if len(o.scenarios) != len(all) {
		t.Fatalf("default scenarios %v, want all %d", o.scenarios, len(all))
	}
	for i, sc := range all {
		if o.scenarios[i] != sc.key {
			t.Errorf("default scenario %d is %q, want %q (the order they run in)", i, o.scenarios[i], sc.key)
		}
	}
	if _, err := parseOptions([]string{"-scenarios", "vss-put-4KiB,vss-nope"}, io.Discard); err == nil {
		t.Error("an unknown scenario name was accepted")
	}
}
