package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// checkLogForPanics fails the drill when the server logged a panic (the
// recovery middleware turns one into a 500, which would otherwise pass as
// a clean failure).
func checkLogForPanics(s *serverProcess, v *verdict) {
	raw, err := os.ReadFile(s.LogPath)
	if err != nil {
		v.require(false, "read server log: %v", err)
		return
	}
	n := strings.Count(strings.ToLower(string(raw)), "panic")
	v.require(n == 0, "the server log mentions a panic %d times (%s)", n, s.LogPath)
}

// noteOther5xx notes failures that were 5xx but not 503, with the causes
// the server logged for them: the promise is a clean 5xx, but a client (or
// a load balancer) can only tell "try again" from a 503.
func noteOther5xx(s *serverProcess, statuses map[string]int, v *verdict) {
	for status, n := range statuses {
		if status == "503" {
			continue
		}
		causes, err := loggedErrors(s, status)
		if err != nil {
			v.require(false, "read server log: %v", err)
			return
		}
		v.note("%d requests failed with %s rather than 503; the server logged: %v", n, status, causes)
	}
}

// loggedErrors counts the "error" of the server's log lines for requests
// answered with status.
func loggedErrors(s *serverProcess, status string) (map[string]int, error) {
	raw, err := os.ReadFile(s.LogPath)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for line := range strings.Lines(string(raw)) {
		var entry struct {
			Status int    `json:"status"`
			Route  string `json:"route"`
			Error  string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && fmt.Sprint(entry.Status) == status && entry.Error != "" {
			out[entry.Route+": "+entry.Error]++
		}
	}
	return out, nil
}
