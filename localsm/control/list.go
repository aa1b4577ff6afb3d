package control

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// listQuery is what every List operation shares: sorting, paging and the common filters.
type listQuery struct {
	SortBy             string
	SortOrder          string
	NextToken          string
	MaxResults         int
	NameContains       string
	CreationTimeBefore *time.Time
	CreationTimeAfter  *time.Time
}

// listItem is one candidate row of a List operation.
type listItem struct {
	name    string
	created time.Time
	seq     int64
	// status is the sort key for SortBy=Status.
	status string
	out    any
}

// cursor is what a NextToken carries: where the previous page stopped, and the query it belongs
// to, so that a token is not silently reused with another sort.
type cursor struct {
	Op    string `json:"op"`
	Sort  string `json:"sort"`
	Order string `json:"order"`
	Key   string `json:"key"`
	Seq   int64  `json:"seq"`
}

// readListQuery extracts the common list parameters from a validated input.
func readListQuery(in map[string]any) (listQuery, error) {
	var q listQuery
	for field, dst := range map[string]*string{"SortBy": &q.SortBy, "SortOrder": &q.SortOrder,
		"NextToken": &q.NextToken, "NameContains": &q.NameContains} {
		if s, ok := in[field].(string); ok {
			*dst = s
		}
	}
	if n, ok := in["MaxResults"].(json.Number); ok {
		i, _ := n.Int64()
		q.MaxResults = int(i)
	}
	for field, dst := range map[string]**time.Time{"CreationTimeBefore": &q.CreationTimeBefore, "CreationTimeAfter": &q.CreationTimeAfter} {
		if v, ok := in[field]; ok {
			t, err := parseTimestamp(v)
			if err != nil {
				return q, errSerialization("%s: %v", field, err)
			}
			*dst = &t
		}
	}
	return q, nil
}

// keep applies the name and creation-time filters. NameContains matches regardless of case, as
// names are case-insensitive.
func (q listQuery) keep(name string, created time.Time) bool {
	if q.NameContains != "" && !strings.Contains(strings.ToLower(name), strings.ToLower(q.NameContains)) {
		return false
	}
	if q.CreationTimeAfter != nil && created.Before(*q.CreationTimeAfter) {
		return false
	}
	if q.CreationTimeBefore != nil && !created.Before(*q.CreationTimeBefore) {
		return false
	}
	return true
}

// page sorts items and cuts the page the query asks for. defaultOrder is the operation's
// documented default sort order.
func (q listQuery) page(op string, items []listItem, defaultOrder string, defaultMax int) ([]any, string, error) {
	sortBy := cmp.Or(q.SortBy, "CreationTime")
	order := cmp.Or(q.SortOrder, defaultOrder)
	max := cmp.Or(q.MaxResults, defaultMax)
	key := func(it listItem) string {
		switch sortBy {
		case "Name":
			return strings.ToLower(it.name)
		case "Status":
			return it.status
		default:
			return fmt.Sprintf("%020d", it.created.UnixNano())
		}
	}
	less := func(ak string, aseq int64, bk string, bseq int64) bool {
		if ak != bk {
			return ak < bk
		}
		return aseq < bseq
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if order == "Descending" {
			return less(key(b), b.seq, key(a), a.seq)
		}
		return less(key(a), a.seq, key(b), b.seq)
	})
	start := 0
	if q.NextToken != "" {
		c, err := decodeCursor(q.NextToken)
		if err != nil || c.Op != op || c.Sort != sortBy || c.Order != order {
			return nil, "", errValidation("Invalid NextToken %q: pass back the NextToken of the previous %s response, with the same SortBy and SortOrder", truncate(q.NextToken, 40), op)
		}
		start = len(items)
		for i, it := range items {
			var after bool
			if order == "Descending" {
				after = less(key(it), it.seq, c.Key, c.Seq)
			} else {
				after = less(c.Key, c.Seq, key(it), it.seq)
			}
			if after {
				start = i
				break
			}
		}
	}
	end := min(start+max, len(items))
	out := make([]any, 0, end-start)
	for _, it := range items[start:end] {
		out = append(out, it.out)
	}
	next := ""
	if end < len(items) {
		last := items[end-1]
		next = encodeCursor(cursor{Op: op, Sort: sortBy, Order: order, Key: key(last), Seq: last.seq})
	}
	return out, next, nil
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, err
	}
	err = json.Unmarshal(b, &c)
	return c, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
