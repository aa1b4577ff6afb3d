package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// columns say how a list prints as a text table: the column names and one row per item. Every
// list command prints through columns and printList (or emit), so lists align alike and -o json
// prints the same shape everywhere.
type columns[T any] struct {
	header []string
	row    func(T) []string
}

// write prints the header and a row per item, aligned in columns two spaces apart.
func (c columns[T]) write(w io.Writer, items []T) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(c.header, "\t"))
	for _, it := range items {
		fmt.Fprintln(tw, strings.Join(c.row(it), "\t"))
	}
	return tw.Flush()
}

// printList prints items as one JSON array for -o json (an empty list as [], never null), else as
// the table of cols.
func printList[T any](w io.Writer, output string, items []T, cols columns[T]) error {
	if output == "json" {
		if items == nil {
			items = []T{}
		}
		return writeJSONLine(w, items)
	}
	return cols.write(w, items)
}

// writeJSONLine prints v as one line of JSON: what every -o json prints.
func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// emit prints a command's result: JSON for --output json (with an "error" field when it failed),
// else the text render. The command's error is returned unchanged.
func emit(w io.Writer, output string, result any, err error, text func(io.Writer)) error {
	if output != "json" {
		if err == nil && text != nil {
			text(w)
		}
		return err
	}
	v, merr := jsonResult(result, err)
	if merr != nil {
		return errors.Join(err, merr)
	}
	if werr := writeJSONLine(w, v); werr != nil && err == nil {
		return werr
	}
	return err
}

// jsonResult is result as -o json shows it: with the error in an "error" field when the command
// failed, so that scripts read one document either way.
func jsonResult(result any, err error) (any, error) {
	b, merr := json.Marshal(result)
	if merr != nil || err == nil {
		return result, merr
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil || m == nil {
		return result, nil
	}
	m["error"] = err.Error()
	return m, nil
}
