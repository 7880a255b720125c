package api

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckUniqueKeys: a key that encoding/json would match to the same
// field as an earlier one is a duplicate, whatever its case.
func TestCheckUniqueKeys(t *testing.T) {
	t.Parallel()
	for body, dup := range map[string]bool{
		`{"timestamp":1,"signature":"x"}`:        false,
		`{"timestamp":1,"timestamp":2}`:          true,
		`{"timestamp":1,"Timestamp":2}`:          true,
		`{"TIMESTAMP":1,"timestamp":2}`:          true,
		`{"timestamp":1,"\u0074imestamp":2}`:     true,  // an escape is the same key
		`{"k":1,"\u212a":2}`:                     true,  // Kelvin sign
		"{\"k\":1,\"\u212a\":2}":                 true,  // ... sent as UTF-8
		`{"signature":"a","\u017fignature":"b"}`: true,  // long s
		`{"ss":1,"\u00df":2}`:                    false, // full folding only
		`{"a":{"x":1,"X":2},"b":1}`:              false, // nested objects are the field's business
		`{"signature":"a","signatures":"b"}`:     false,
		`{"timestamp":1,"signature":"x","x":{}}`: false,
	} {
		err := checkUniqueKeys([]byte(body))
		if dup {
			require.ErrorContains(t, err, "appears twice", body)
		} else {
			require.NoError(t, err, body)
		}
	}
}

// TestFoldKeyMatchesEncodingJSON: two keys fold alike exactly when
// encoding/json decodes one into the field named by the other.
func TestFoldKeyMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	var fields struct {
		K int `json:"k"`
		S int `json:"s"`
		T int `json:"timestamp"`
	}
	names := map[string]*int{"k": &fields.K, "s": &fields.S, "timestamp": &fields.T}
	for _, key := range []string{"k", "K", "\u212a", "s", "S", "\u017f", "timestamp", "TimeStamp", "\u212aelvin", "ss", "\u00df", "t", "x"} {
		for name, field := range names {
			fields.K, fields.S, fields.T = 0, 0, 0
			require.NoError(t, json.Unmarshal([]byte(`{`+strconv.Quote(key)+`:1}`), &fields))
			require.Equal(t, *field == 1, foldKey(key) == foldKey(name), "%q and %q", key, name)
		}
	}
}
