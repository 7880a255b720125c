// Package table prints rows as an aligned text table, CSV or JSON: the one
// output of every listing command of the CLI (--format table|csv|json), so
// a script gets the same columns whichever command it reads.
package table

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Format is how rows are printed.
type Format string

// The formats of --format.
const (
	Table Format = "table"
	CSV   Format = "csv"
	JSON  Format = "json"
)

// Formats lists every format, for help texts.
const Formats = "table, csv or json"

// ParseFormat reads --format.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Table, CSV, JSON:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want %s)", s, Formats)
}

// Set implements pflag.Value, so a bad --format is refused while the
// command line is parsed, before any work.
func (f *Format) Set(s string) error {
	v, err := ParseFormat(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// String implements pflag.Value.
func (f *Format) String() string { return string(*f) }

// Type implements pflag.Value.
func (f *Format) Type() string { return "format" }

// Write prints rows under cols (snake_case names: the JSON keys, and the
// table's headers in upper case). Values may be nil, strings, integers,
// floats, booleans, times, pgtype.Numeric and slices of these.
func Write(w io.Writer, f Format, cols []string, rows [][]any) error {
	switch f {
	case "", Table:
		return writeTable(w, cols, rows)
	case CSV:
		return writeCSV(w, cols, rows)
	case JSON:
		return writeJSON(w, cols, rows)
	}
	return fmt.Errorf("unknown format %q (want %s)", f, Formats)
}

func writeTable(w io.Writer, cols []string, rows [][]any) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(cells(row), "\t"))
	}
	return tw.Flush()
}

func writeCSV(w io.Writer, cols []string, rows [][]any) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(cols); err != nil {
		return err
	}
	for _, row := range rows {
		if err := cw.Write(cells(row)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func writeJSON(w io.Writer, cols []string, rows [][]any) error {
	out := make([]map[string]any, 0, len(rows))
	for _, row := range rows {
		m := make(map[string]any, len(cols))
		for i, v := range row {
			m[cols[i]] = jsonValue(v)
		}
		out = append(out, m)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func cells(row []any) []string {
	out := make([]string, len(row))
	for i, v := range row {
		out[i] = text(v)
	}
	return out
}

// text renders a value for a table or CSV cell.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case *time.Time:
		if x == nil {
			return ""
		}
		return text(*x)
	case time.Time:
		if x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 && x.Nanosecond() == 0 {
			return x.Format("2006-01-02")
		}
		return x.UTC().Format(time.RFC3339)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = text(e)
		}
		return strings.Join(parts, ",")
	case pgtype.Numeric:
		f, _ := numericFloat(x)
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// jsonValue keeps numbers numbers and nulls null, and renders the rest as
// text.
func jsonValue(v any) any {
	switch x := v.(type) {
	case nil, int, int64, int32, bool, string, float64:
		return x
	case *time.Time:
		if x == nil {
			return nil
		}
		return text(*x)
	case pgtype.Numeric:
		if f, ok := numericFloat(x); ok {
			return f
		}
		return nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	}
	return text(v)
}

func numericFloat(n pgtype.Numeric) (float64, bool) {
	f, err := n.Float64Value()
	return f.Float64, err == nil && f.Valid
}
