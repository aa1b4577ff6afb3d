package releases_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
)

// A deployer stops when the release server says no and goes on (with a warning) when it cannot
// answer: the two must never be confused.
func TestRefusalOrUnreachable(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, `{"error":"the token is for dev"}`)
	}))
	defer srv.Close()
	down := httptest.NewServer(nil)
	down.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		status            int
		url               string
		refusal, unreachd bool
	}{
		{http.StatusUnauthorized, srv.URL, true, false},
		{http.StatusForbidden, srv.URL, true, false},
		{http.StatusNotFound, srv.URL, true, false},
		{http.StatusConflict, srv.URL, true, false},
		{http.StatusTooManyRequests, srv.URL, false, true},
		{http.StatusBadGateway, srv.URL, false, true},
		{http.StatusInternalServerError, srv.URL, false, true},
		{0, down.URL, false, true},
	} {
		status = tc.status
		_, err := releases.NewClient(tc.url, "tok", nil).Me(ctx)
		if err == nil {
			t.Fatalf("HTTP %d: no error", tc.status)
		}
		if got := releases.IsRefusal(err); got != tc.refusal {
			t.Errorf("HTTP %d (%v): IsRefusal = %t, want %t", tc.status, err, got, tc.refusal)
		}
		if got := releases.IsUnreachable(err); got != tc.unreachd {
			t.Errorf("HTTP %d (%v): IsUnreachable = %t, want %t", tc.status, err, got, tc.unreachd)
		}
	}
	if releases.IsUnreachable(nil) || releases.IsRefusal(nil) {
		t.Error("nil is neither a refusal nor an unreachable server")
	}
}
