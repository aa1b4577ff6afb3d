package runtime

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

// TestAnswerHeaders: every answer names its own type and length — answers of one row and of
// many (longer than the lengths the runtime keeps ready), in the formats a client alternates
// between, and the variant that served it.
func TestAnswerHeaders(t *testing.T) {
	e := newEnv(t, nil)
	e.deploy(t, xgbDeployment("abalone", 2, 1))
	rows, err := abalone.Rows()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rows   int
		accept string
		ctype  string
	}{
		{1, "text/csv", "text/csv; charset=utf-8"},
		{1, "application/json", "application/json"},
		{1, "text/csv", "text/csv; charset=utf-8"},
		{500, "text/csv", "text/csv; charset=utf-8"},
		{500, "application/jsonlines", "application/jsonlines"},
		{1, "text/csv", "text/csv; charset=utf-8"},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/endpoints/abalone/invocations", bytes.NewReader(abalone.FeaturesCSV(rows[:tc.rows])))
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Accept", tc.accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d rows, Accept %s: %d %s", tc.rows, tc.accept, resp.StatusCode, body)
		}
		if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
			t.Errorf("%d rows, Accept %s: Content-Length %q for a %d-byte answer", tc.rows, tc.accept, got, len(body))
		}
		if got := resp.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("%d rows, Accept %s: Content-Type %q, want %q", tc.rows, tc.accept, got, tc.ctype)
		}
		if got := resp.Header.Get("X-Amzn-Invoked-Production-Variant"); got != "AllTraffic" {
			t.Errorf("%d rows: invoked variant %q, want AllTraffic", tc.rows, got)
		}
	}
}
